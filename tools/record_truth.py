#!/usr/bin/env python3
"""Record a kernel-truth case for wirestat.

    sudo python3 tools/record_truth.py SCENARIO DIR [--seed N] [options]

The observed host is a network namespace ("obs", 10.201.0.1 and fd00:201::1)
joined by one veth pair to a second namespace ("peer", 10.201.0.2 and
fd00:201::2).  A capture runs on obs's end of the pair from before obs has a
carrier, so it holds every frame obs ever sent or received.  Python sockets in
both namespaces (this same file, started as `--worker` through `ip netns exec`)
then build the scenario's TCP connections.  Whatever has to be lost is lost on
the peer's side: nftables rules in the peer drop obs's FINs, SYNs or SYN-ACKs
after they crossed the wire, and for bulk loss also the peer's own segments on
their way out of the peer's bridge (a drop there is silent, as on a wire).
Nothing is ever filtered or configured in obs.

When the workload is done, obs's kernel is read (ss, /proc/net/snmp,
/proc/net/netstat, /proc/net/snmp6, link counters) until two reads in a row
agree; the capture is then cut after exactly as many frames as obs's link
counted.  DIR/capture.pcap and DIR/truth.json are the case, in the format of
the shared oracle's cases (score with ../shared/oracle/score.py).

Exit status: 0 recorded and every check passed; 2 recorded, but a check failed
(listed in truth.json meta.expect.problems and on stderr); 1 not recorded.
Run `--help` for the options and scenarios.
"""
import argparse
import collections
import errno
import ipaddress
import json
import os
import random
import re
import select
import shlex
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

OBS_ADDR = {4: "10.201.0.1", 6: "fd00:201::1"}
PEER_ADDR = {4: "10.201.0.2", 6: "fd00:201::2"}
PREFIX = {4: 24, 6: 64}
PROTO = {4: "TCP", 6: "TCPv6"}
NFT_IP = {4: "ip", 6: "ip6"}

# the eight TCP MIB counters of truth.json "tcp", and their /proc/net/snmp names
TCP_MIB = [("active_opens", "TcpActiveOpens"), ("passive_opens", "TcpPassiveOpens"),
           ("failed_connection_attempts", "TcpAttemptFails"), ("reset_connections", "TcpEstabResets"),
           ("current_connections", "TcpCurrEstab"), ("segments_received", "TcpInSegs"),
           ("segments_sent", "TcpOutSegs"), ("segments_retransmitted", "TcpRetransSegs")]
STRUCTURAL = ["active_opens", "passive_opens", "failed_connection_attempts", "reset_connections",
              "current_connections"]
# constants that nstat leaves out (they are settings, not counts)
NOT_COUNTERS = {"IpForwarding", "IpDefaultTTL", "TcpRtoAlgorithm", "TcpRtoMin", "TcpRtoMax", "TcpMaxConn"}

SS_NAMES = {"ESTAB": "ESTABLISHED", "SYN-SENT": "SYN_SENT", "SYN-RECV": "SYN_RCVD",
            "FIN-WAIT-1": "FIN_WAIT_1", "FIN-WAIT-2": "FIN_WAIT_2", "TIME-WAIT": "TIME_WAIT",
            "CLOSE-WAIT": "CLOSE_WAIT", "LAST-ACK": "LAST_ACK", "LISTEN": "LISTEN",
            "CLOSING": "CLOSING", "UNCONN": "CLOSE"}
# /proc/net/tcp{,6} "st" column
PROC_TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RCVD", 4: "FIN_WAIT_1", 5: "FIN_WAIT_2",
                   6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING"}

DEFAULT_CAPTURE = "tcpdump -i {iface} -U --immediate-mode -s {snaplen} -B 16384 -n -Z root -w {out}"


def log(*parts):
    print("[record_truth %s]" % time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


def endpoint(fam, addr, port):
    """an endpoint as truth.json writes it: 10.201.0.1:80 or [fd00:201::1]:80"""
    a = ipaddress.ip_address(addr).compressed
    return "[%s]:%d" % (a, port) if fam == 6 else "%s:%d" % (a, port)


# ===========================================================================
# Worker: runs inside one namespace, owns that side's sockets.
# One JSON request per line on stdin, one JSON reply per line on stdout.
# ===========================================================================
PATTERN = bytes((i * 131 + 7) & 0xFF for i in range(1 << 16))


def payload(n):
    reps, rest = divmod(n, len(PATTERN))
    return PATTERN * reps + PATTERN[:rest]


class Worker:
    def __init__(self):
        self.socks = {}
        self.pumps = {}

    @staticmethod
    def fresh(fam):
        s = socket.socket(socket.AF_INET6 if fam == 6 else socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == 6:   # the wire family is the socket family: no ::ffff: rows
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        return s

    @staticmethod
    def any_addr(fam):
        return "::" if fam == 6 else "0.0.0.0"

    def op_hello(self):
        return {"pid": os.getpid()}

    def op_listen(self, id, fam, port, addr=None):
        s = self.fresh(fam)
        s.bind((addr or self.any_addr(fam), port))
        s.listen(128)
        self.socks[id] = s

    def op_connect(self, id, fam, addr, port, sport, wait=True, timeout=5.0):
        """wait=False: send the SYN and return at once."""
        s = self.fresh(fam)
        s.bind((self.any_addr(fam), sport))
        s.setblocking(False)
        self.socks[id] = s
        rc = s.connect_ex((addr, port))
        if rc not in (0, errno.EINPROGRESS):
            return {"error": errno.errorcode.get(rc, str(rc))}
        if not wait:
            return {"error": None}
        if not select.select([], [s], [], timeout)[1]:
            return {"error": "TIMEOUT"}
        rc = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        s.setblocking(True)
        return {"error": errno.errorcode.get(rc, str(rc)) if rc else None}

    def op_accept(self, listener, id, timeout=5.0):
        ls = self.socks[listener]
        ls.settimeout(timeout)
        c, _ = ls.accept()
        c.settimeout(None)
        self.socks[id] = c

    def op_send(self, id, n, timeout=10.0):
        s = self.socks[id]
        s.settimeout(timeout)
        s.sendall(payload(n))
        s.settimeout(None)

    def op_recv(self, id, n, timeout=10.0):
        """exactly n bytes"""
        s = self.socks[id]
        s.settimeout(timeout)
        got = 0
        try:
            while got < n:
                d = s.recv(min(1 << 16, n - got))
                if not d:
                    raise RuntimeError("EOF after %d of %d bytes" % (got, n))
                got += len(d)
        finally:
            s.settimeout(None)
        return {"got": got}

    def op_recv_end(self, id, timeout=10.0):
        """read until the peer's FIN (end=eof) or a RST (end=reset)"""
        s = self.socks[id]
        s.settimeout(timeout)
        got = 0
        try:
            while True:
                d = s.recv(1 << 16)
                if not d:
                    return {"got": got, "end": "eof"}
                got += len(d)
        except ConnectionResetError:
            return {"got": got, "end": "reset"}
        finally:
            s.settimeout(None)

    def op_wait_unread(self, id, n, timeout=5.0):
        """until n bytes wait unread in the receive queue"""
        import fcntl
        import termios
        s = self.socks[id]
        deadline = time.monotonic() + timeout
        buf = bytearray(4)
        while True:
            fcntl.ioctl(s.fileno(), termios.FIONREAD, buf)
            have = struct.unpack("i", buf)[0]
            if have >= n:
                return {"unread": have}
            if time.monotonic() > deadline:
                raise RuntimeError("only %d of %d bytes arrived" % (have, n))
            time.sleep(0.005)

    def op_shutdown(self, id):
        self.socks[id].shutdown(socket.SHUT_WR)

    def op_close(self, id, abort=False):
        s = self.socks.pop(id)
        if abort:   # SO_LINGER {on, 0}: close() sends a RST
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()

    def op_sockerr(self, id):
        rc = self.socks[id].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        return {"error": errno.errorcode.get(rc, str(rc)) if rc else None}

    def op_pump(self, id, tx, rx, tag, timeout=60.0):
        """send tx bytes and receive rx bytes at the same time, in the background"""
        s = self.socks[id]
        st = {"sent": 0, "recvd": 0, "error": None, "done": False}

        def run():
            s.setblocking(False)
            data = payload(min(tx, 1 << 20))
            deadline = time.monotonic() + timeout
            try:
                while st["sent"] < tx or st["recvd"] < rx:
                    if time.monotonic() > deadline:
                        raise RuntimeError("pump timed out")
                    want_w = [s] if st["sent"] < tx else []
                    want_r = [s] if st["recvd"] < rx else []
                    r, w, _ = select.select(want_r, want_w, [], 0.5)
                    if r:
                        d = s.recv(min(1 << 16, rx - st["recvd"]))
                        if not d:
                            raise RuntimeError("EOF while pumping")
                        st["recvd"] += len(d)
                    if w:
                        off = st["sent"] % len(data)
                        chunk = data[off:off + min(1 << 16, tx - st["sent"])]
                        try:
                            st["sent"] += s.send(chunk)
                        except BlockingIOError:
                            pass
            except Exception as e:  # reported by op_join
                st["error"] = "%s: %s" % (type(e).__name__, e)
            finally:
                s.setblocking(True)
                st["done"] = True
        t = threading.Thread(target=run, daemon=True)
        self.pumps[tag] = (t, st)
        t.start()

    def op_join(self, tag, timeout=60.0):
        t, st = self.pumps[tag]
        t.join(timeout)
        if st["error"]:
            raise RuntimeError(st["error"])
        if not st["done"]:
            raise RuntimeError("pump %s still running after %.0f s" % (tag, timeout))
        del self.pumps[tag]
        return {"sent": st["sent"], "recvd": st["recvd"]}

    @staticmethod
    def tcp_state(fam, lport, rport):
        with open("/proc/net/tcp6" if fam == 6 else "/proc/net/tcp") as f:
            next(f)
            for line in f:
                col = line.split()
                if int(col[1].rsplit(":", 1)[1], 16) == lport and int(col[2].rsplit(":", 1)[1], 16) == rport:
                    return PROC_TCP_STATES.get(int(col[3], 16), col[3])
        return "GONE"

    def op_state(self, fam, lport, rport, want=None, timeout=5.0):
        """this namespace's state of a connection (GONE: no socket); with
        `want`, wait until it is in that state"""
        deadline = time.monotonic() + timeout
        while True:
            st = self.tcp_state(fam, lport, rport)
            if want is None or st == want:
                return {"state": st}
            if time.monotonic() > deadline:
                raise RuntimeError("connection :%d-:%d is %s, not %s after %.1f s"
                                   % (lport, rport, st, want, timeout))
            time.sleep(0.01)


def worker_main():
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # the recorder stops us
    w = Worker()
    for line in sys.stdin:
        req = json.loads(line)
        op = req.pop("op")
        if op == "quit":
            break
        try:
            reply = dict(getattr(w, "op_" + op)(**req) or {}, ok=True)
        except Exception as e:
            reply = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


# ===========================================================================
# Recorder side
# ===========================================================================
class Failure(Exception):
    pass


class Interrupted(BaseException):
    def __init__(self, signum):
        super().__init__("signal %d" % signum)
        self.signum = signum


def die_with_parent(sig=signal.SIGKILL):
    """preexec_fn: the child gets `sig` if the recorder dies (even by SIGKILL),
    so nothing we started outlives us; namespaces left behind by a SIGKILL are
    reported at the next start and removed by --clean-stale"""
    import ctypes
    def arm():
        ctypes.CDLL(None, use_errno=True).prctl(1, int(sig))   # PR_SET_PDEATHSIG
    return arm


def sh(cmd, input=None, check=True):
    p = subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    if check and p.returncode:
        raise Failure("%s: exit %d: %s" % (" ".join(cmd), p.returncode, p.stderr.strip()))
    return p.stdout


class Janitor:
    """Undo actions, run newest first: on success, on an error and on a signal."""

    def __init__(self):
        self.actions = []

    def push(self, what, fn):
        self.actions.append((what, fn))

    def run(self):
        signal.alarm(0)
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
            signal.signal(s, signal.SIG_IGN)      # a second Ctrl-C must not stop the cleanup
        while self.actions:
            what, fn = self.actions.pop()
            try:
                fn()
            except Exception as e:
                log("cleanup: %s: %s" % (what, e))


class Remote:
    """A worker process inside a namespace."""

    def __init__(self, ns, label, janitor):
        self.label = label
        self.p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-u", os.path.abspath(__file__),
                                   "--worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  bufsize=1, start_new_session=True, preexec_fn=die_with_parent())
        janitor.push("worker " + label, self.stop)
        self.call("hello")

    def call(self, op, **kw):
        budget = float(kw.get("timeout", 5.0)) + 10.0
        self.p.stdin.write(json.dumps(dict(kw, op=op)) + "\n")
        self.p.stdin.flush()
        if not select.select([self.p.stdout], [], [], budget)[0]:
            raise Failure("%s worker: no answer to %s within %.0f s" % (self.label, op, budget))
        line = self.p.stdout.readline()
        if not line:
            raise Failure("%s worker exited during %s" % (self.label, op))
        reply = json.loads(line)
        if not reply.pop("ok"):
            raise Failure("%s worker: %s %s: %s" % (self.label, op, kw, reply.get("error")))
        return reply

    def stop(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.write('{"op": "quit"}\n')
                self.p.stdin.flush()
                self.p.wait(2)
            except Exception:
                self.p.kill()
                self.p.wait(5)


class Lab:
    """Two namespaces and one veth pair.

        obs: vo<pid> 10.201.0.1/24 fd00:201::1/64
             ==veth==  peer: vp<pid> -- bridge br0 10.201.0.2/24 fd00:201::2/64

    The peer's addresses sit on a bridge whose only port is the veth, so that
    nftables can drop the peer's own segments in the bridge's output hook:
    there the drop is invisible to the peer's TCP, exactly like a loss on the
    wire (a drop in the IP output path is reported back to TCP, which then
    just sends the segment again)."""

    def __init__(self, janitor):
        pid = os.getpid()
        self.j = janitor
        self.obs, self.peer = "wtr%d-obs" % pid, "wtr%d-peer" % pid
        self.vo, self.vp = "vo%d" % pid, "vp%d" % pid
        self.capture = None
        self.capture_err = ""
        self.live = None

    def ns_exec(self, ns, *cmd, **kw):
        return sh(["ip", "netns", "exec", ns] + list(cmd), **kw)

    def build(self):
        for ns in (self.obs, self.peer):
            sh(["ip", "netns", "add", ns])
            self.j.push("namespace " + ns, lambda ns=ns: self.remove_ns(ns))
        sh(["ip", "link", "add", self.vo, "netns", self.obs, "type", "veth", "peer", "name", self.vp,
            "netns", self.peer])
        sh(["ip", "-n", self.peer, "link", "add", "br0", "type", "bridge", "stp_state", "0",
            "mcast_snooping", "0"])
        sh(["ip", "-n", self.peer, "link", "set", self.vp, "master", "br0"])
        for ns, dev, addrs in ((self.obs, self.vo, OBS_ADDR), (self.peer, "br0", PEER_ADDR)):
            sh(["ip", "-n", ns, "link", "set", "lo", "up"])
            for fam in (4, 6):
                sh(["ip", "-n", ns, "addr", "add", "%s/%d" % (addrs[fam], PREFIX[fam]), "dev", dev]
                   + (["nodad"] if fam == 6 else []))
        # one frame per TCP segment and valid checksums in the capture, both ways
        for ns, dev in ((self.obs, self.vo), (self.peer, self.vp), (self.peer, "br0")):
            self.ns_exec(ns, "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off", "tx", "off")
        self.ns_exec(self.peer, "nft", "-f", "-", input=(
            "table inet wtr {\n"
            "  chain input { type filter hook input priority 0; policy accept; }\n"
            "}\n"
            "table bridge wtr {\n"
            "  chain output { type filter hook output priority 0; policy accept; }\n"
            "}\n"))
        # obs's end up now, the peer's later: until then obs has no carrier and
        # sends nothing at all (no MLD, RS or ND), so the capture can start first.
        sh(["ip", "-n", self.obs, "link", "set", self.vo, "up"])

    def remove_ns(self, ns):
        """kill what still runs in the namespace (all of it started by us), then delete it"""
        pids = [int(p) for p in sh(["ip", "netns", "pids", ns], check=False).split()]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if os.path.exists("/proc/%d" % p)]
            time.sleep(0.02)
        sh(["ip", "netns", "del", ns])

    def carrier_up(self):
        sh(["ip", "-n", self.peer, "link", "set", "br0", "up"])
        sh(["ip", "-n", self.peer, "link", "set", self.vp, "up"])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            link = json.loads(sh(["ip", "-n", self.obs, "-j", "link", "show", "dev", self.vo]))[0]
            port = json.loads(sh(["ip", "-n", self.peer, "-j", "-d", "link", "show", "dev", self.vp]))[0]
            if "LOWER_UP" in link["flags"] and port.get("linkinfo", {}).get("info_slave_data", {}).get(
                    "state", "forwarding") == "forwarding":
                return
            time.sleep(0.02)
        raise Failure("the veth did not get a carrier")

    # ---- capture ------------------------------------------------------------
    def start_capture(self, template, path, snaplen):
        argv = [a.format(iface=self.vo, out=path, snaplen=snaplen) for a in shlex.split(template)]
        self.capture_err_path = path + ".stderr"
        err = open(self.capture_err_path, "w")
        self.capture = subprocess.Popen(["ip", "netns", "exec", self.obs] + argv, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
                                        preexec_fn=die_with_parent(signal.SIGINT))
        err.close()
        self.j.push("capture", self.stop_capture)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:   # the file header is written once the capture is open
            if os.path.exists(path) and os.path.getsize(path) >= 24:
                time.sleep(0.2)
                return " ".join(shlex.quote(a) for a in argv)
            if self.capture.poll() is not None:
                break
            time.sleep(0.02)
        raise Failure("capture did not start: %s" % open(self.capture_err_path).read().strip())

    def stop_capture(self):
        p, self.capture = self.capture, None
        if p is None:
            return
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGINT)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
        with open(self.capture_err_path) as f:
            self.capture_err = f.read()
        os.unlink(self.capture_err_path)

    # ---- a live tool on the same interface ----------------------------------
    def start_live(self, template, outdir):
        argv = [a.format(iface=self.vo) for a in shlex.split(template)]
        out = open(os.path.join(outdir, "live.json"), "wb")
        err = open(os.path.join(outdir, "live.err"), "wb")
        self.live = subprocess.Popen(["ip", "netns", "exec", self.obs] + argv, stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=err, start_new_session=True,
                                     preexec_fn=die_with_parent(signal.SIGINT))
        out.close()
        err.close()
        self.live_cmd = " ".join(shlex.quote(a) for a in argv)
        self.j.push("live tool", lambda: self.stop_live(grace=5.0))
        log("live tool started, pid %d: %s" % (self.live.pid, self.live_cmd))

    def stop_live(self, grace):
        """SIGINT to the tool's process group; SIGKILL after `grace` seconds"""
        p, self.live = self.live, None
        if p is None:
            return None
        res = {"cmd": self.live_cmd, "iface": self.vo, "killed": False, "t_sigint": None}
        if p.poll() is not None:
            res.update(exit_code=p.returncode, t_exit=None)
            return res
        res["t_sigint"] = time.time()
        os.killpg(p.pid, signal.SIGINT)
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)
            res["killed"] = True
        res.update(exit_code=p.returncode, t_exit=time.time())
        return res

    # ---- peer firewall ------------------------------------------------------
    def rule(self, table, chain, text):
        fam = "bridge" if table == "bridge" else "inet"
        out = self.ns_exec(self.peer, "nft", "--echo", "--handle", "add", "rule", fam, "wtr", chain,
                           *text.split())
        m = re.search(r"# handle (\d+)", out)
        if not m:
            raise Failure("nft returned no handle for: " + text)
        return (fam, chain, m.group(1))

    def unrule(self, handle):
        fam, chain, h = handle
        self.ns_exec(self.peer, "nft", "delete", "rule", fam, "wtr", chain, "handle", h)

    def ruleset(self):
        return self.ns_exec(self.peer, "nft", "list", "ruleset")

    # ---- obs's kernel view --------------------------------------------------
    def read_kernel(self):
        cut = "echo @@cut@@"
        script = "; ".join(["ss -tanH -f inet", cut, "ss -tanH -f inet6", cut, "ss -uanH -f inet", cut,
                            "ss -uanH -f inet6", cut, "cat /proc/net/snmp /proc/net/netstat", cut,
                            "cat /proc/net/snmp6", cut, "ip -s -j link show dev " + self.vo])
        t0 = time.time()
        out = self.ns_exec(self.obs, "sh", "-c", script)
        t1 = time.time()
        tcp4, tcp6, udp4, udp6, mibs, mibs6, link = out.split("@@cut@@\n")
        rows = parse_ss(tcp4, 4, "TCP") + parse_ss(tcp6, 6, "TCP")
        udp = parse_ss(udp4, 4, "UDP") + parse_ss(udp6, 6, "UDP")
        raw = {}
        lines = mibs.splitlines()
        for head, vals in zip(lines[0::2], lines[1::2]):
            group, names = head.split(":", 1)
            group2, values = vals.split(":", 1)
            if group != group2:
                raise Failure("unexpected /proc/net/snmp layout near " + head)
            for n, v in zip(names.split(), values.split()):
                raw[group + n] = int(v)
        for line in mibs6.splitlines():
            col = line.split()
            if len(col) == 2:
                raw[col[0]] = int(col[1])
        info = json.loads(link)[0]
        st = info["stats64"]
        iface = {"rx_bytes": st["rx"]["bytes"], "rx_packets": st["rx"]["packets"],
                 "tx_bytes": st["tx"]["bytes"], "tx_packets": st["tx"]["packets"],
                 "rx_multicast": st["rx"].get("multicast", 0), "rx_dropped": st["rx"].get("dropped", 0),
                 "tx_dropped": st["tx"].get("dropped", 0)}
        return {"rows": rows, "udp": udp, "raw": raw, "iface": iface, "mac": info["address"], "t": [t0, t1]}

    def settled_view(self, gap, tries):
        """read obs's kernel until two reads `gap` seconds apart are identical"""
        a = self.read_kernel()
        for attempt in range(1, tries + 1):
            time.sleep(gap)
            b = self.read_kernel()
            same = all(a[k] == b[k] for k in ("rows", "udp", "raw", "iface"))
            if same:
                return a, b, attempt
            moved = sorted(k for k in b["raw"] if a["raw"].get(k) != b["raw"][k])
            log("obs still moving (attempt %d): %s%s" % (attempt, " ".join(moved[:6]),
                " + socket table" if a["rows"] != b["rows"] else ""))
            a = b
        raise Failure("obs's kernel view never settled in %d tries" % tries)


def parse_ss(text, fam, proto):
    """ss -[tu]anH lines -> (proto, local, foreign, state); the foreign end of an
    unconnected UDP socket is *:*"""
    rows = []
    for line in text.splitlines():
        col = line.split()
        if len(col) < 5:
            continue
        local = ss_endpoint(col[3], fam)
        if proto == "UDP" and col[4].endswith(":*"):
            foreign = "*:*"
        else:
            foreign = ss_endpoint(col[4], fam)
        rows.append((proto + ("v6" if fam == 6 else ""), local, foreign, SS_NAMES.get(col[0], col[0]),
                     int(col[1])))
    return sorted(rows)


def ss_endpoint(text, fam):
    host, _, port = text.rpartition(":")
    host = host.strip("[]").split("%")[0]
    if host in ("*", ""):
        host = "::" if fam == 6 else "0.0.0.0"
    return endpoint(fam, host, 0 if port == "*" else int(port))


# ---------------------------------------------------------------------------
# pcap reading (classic pcap only, any byte order, µs or ns)
# ---------------------------------------------------------------------------
def pcap_records(path):
    """(header bytes, [(ts, record bytes, frame bytes, orig_len)])"""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    order = {b"\xd4\xc3\xb2\xa1": ("<", 1e6), b"\x4d\x3c\xb2\xa1": ("<", 1e9),
             b"\xa1\xb2\xc3\xd4": (">", 1e6), b"\xa1\xb2\x3c\x4d": (">", 1e9)}.get(magic)
    if order is None:
        raise Failure("%s is not a classic pcap file (pcapng is not supported here)" % path)
    end, div = order
    linktype = struct.unpack(end + "I", data[20:24])[0]
    if linktype != 1:
        raise Failure("%s: link type %d, expected Ethernet" % (path, linktype))
    recs, off = [], 24
    while off + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack(end + "IIII", data[off:off + 16])
        rec = data[off:off + 16 + incl]
        recs.append((sec + frac / div, rec, rec[16:], orig))
        off += 16 + incl
    return data[:24], recs


def tcp_family(frame):
    """4 or 6 when the Ethernet frame carries TCP (802.1Q tags skipped), else None"""
    et, off = struct.unpack("!H", frame[12:14])[0], 14
    while et in (0x8100, 0x88A8) and len(frame) >= off + 4:
        et, off = struct.unpack("!H", frame[off + 2:off + 4])[0], off + 4
    if et == 0x0800 and len(frame) > off + 9:
        return 4 if frame[off + 9] == 6 else None
    if et == 0x86DD and len(frame) > off + 6:
        return 6 if frame[off + 6] == 6 else None
    return None


def cut_capture(full, dst, view_a, view_b):
    """Keep the frames obs's link had counted when the kernel was read (rx + tx
    packets): the capture's first N frames.  Checks that they agree with the
    link counters per direction and that no frame fell inside the reads."""
    header, recs = pcap_records(full)
    mac = bytes.fromhex(view_a["mac"].replace(":", ""))
    iface = view_a["iface"]
    n = iface["rx_packets"] + iface["tx_packets"]
    problems = []
    if len(recs) < n:
        problems.append("the capture holds %d frames, obs's link counted %d" % (len(recs), n))
    kept = recs[:n]
    by_dir = {"rx_packets": 0, "rx_bytes": 0, "tx_packets": 0, "tx_bytes": 0}
    tcp = {"ipv4": {"to_obs": 0, "from_obs": 0}, "ipv6": {"to_obs": 0, "from_obs": 0}}
    for ts, rec, frame, orig in kept:
        d = "tx" if frame[6:12] == mac else "rx"
        by_dir[d + "_packets"] += 1
        by_dir[d + "_bytes"] += orig
        fam = tcp_family(frame)
        if fam:
            tcp["ipv%d" % fam]["from_obs" if d == "tx" else "to_obs"] += 1
    for k, v in by_dir.items():
        if iface[k] != v:
            problems.append("kept frames give %s=%d, obs's link counted %d" % (k, v, iface[k]))
    # Two identical reads bracket the cut: frame n was counted by the first
    # read's link counters (read last), frame n+1 not even by the second's.
    last_ts = kept[-1][0] if kept else None
    next_ts = recs[n][0] if len(recs) > n else None
    if last_ts is not None and last_ts > view_a["t"][1]:
        problems.append("the last kept frame (%.6f) is later than the first kernel read (%.6f)"
                        % (last_ts, view_a["t"][1]))
    if next_ts is not None and next_ts < view_b["t"][0]:
        problems.append("frame %d (%.6f) came before the second kernel read (%.6f) but is not counted"
                        % (n + 1, next_ts, view_b["t"][0]))
    gap = sum(1 for r in recs if view_a["t"][1] <= r[0] <= view_b["t"][0])
    if gap:
        problems.append("%d frames between the two identical kernel reads" % gap)
    with open(dst, "wb") as f:
        f.write(header + b"".join(r[1] for r in kept))
    return {"kept": len(kept), "cut_after_snapshot": len(recs) - len(kept), "in_quiet_gap": gap,
            "last_kept_ts": last_ts, "next_frame_ts": next_ts, "by_direction": by_dir, "tcp_frames": tcp}, problems


def frames_between(full, t0, t1):
    return sum(1 for ts, _, _, _ in pcap_records(full)[1] if t0 < ts <= t1)


# ===========================================================================
# Workload: recipes that leave obs with one connection in a known state
# ===========================================================================
class Conn:
    def __init__(self, fam, oid, pid, oport, pport):
        self.fam, self.oid, self.pid, self.oport, self.pport = fam, oid, pid, oport, pport
        self.key = (PROTO[fam], endpoint(fam, OBS_ADDR[fam], oport), endpoint(fam, PEER_ADDR[fam], pport))


# recipes whose final state keeps a timer running (retransmissions): they are
# set up with everything else and finished last, close together in time
TIMED = {"FIN_WAIT_1", "CLOSING", "LAST_ACK", "SYN_SENT", "SYN_RCVD"}
# recipes whose outcome needs a retransmission timer (~1 s): started first
SLOW = {"embryonic_rst", "icmp_refused"}


class Bench:
    def __init__(self, lab, obs, peer, rng, max_listeners):
        self.lab, self.obs, self.peer, self.rng = lab, obs, peer, rng
        self.rows = {}                         # expected obs rows: key -> state
        self.listen = set()                    # expected obs listeners: (proto, port)
        self.count = collections.Counter({k: 0 for k in STRUCTURAL[:4]})
        self.notes = collections.Counter()
        self.loss = []                         # bulk connections and their loss
        self.later = []                        # checks to run once phase A is done
        self.ports = set()
        self.ids = 0
        self.max_listeners = max_listeners
        self.obs_listeners = {4: [], 6: []}    # [id, port]
        self.peer_listeners = {4: [], 6: []}

    # ---- helpers ------------------------------------------------------------
    def new_id(self, side):
        self.ids += 1
        return "%s%d" % (side, self.ids)

    def port(self, lo, hi):
        for _ in range(10000):
            p = self.rng.randint(lo, hi)
            if p not in self.ports:
                self.ports.add(p)
                return p
        raise Failure("no free port left in %d-%d" % (lo, hi))

    def client_port(self):
        return self.port(32768, 60999)

    def closed_port(self):
        return self.port(20000, 29999)

    def obs_state(self, fam, oport, pport, want, timeout=5.0):
        return self.obs.call("state", fam=fam, lport=oport, rport=pport, want=want, timeout=timeout)["state"]

    def expect(self, c, state):
        self.rows[c.key] = state

    def obs_listener(self, fam):
        """an obs listener for an incoming connection; new listeners are made on
        demand, so every listener receives at least this one SYN"""
        have = self.obs_listeners[fam]
        if not have or (len(have) < self.max_listeners and self.rng.random() < 0.5):
            other = [p for _, p in self.obs_listeners[10 - fam]]
            mine = {p for _, p in have}
            if other and self.rng.random() < 0.35 and other[0] not in mine:
                port = other[0]                # one service on both families
            else:
                port = self.port(1024, 9999)
            lid = self.new_id("L")
            addr = OBS_ADDR[fam] if self.rng.random() < 0.5 else None
            self.obs.call("listen", id=lid, fam=fam, port=port, addr=addr)
            have.append((lid, port))
            self.listen.add((PROTO[fam], port))
            return lid, port
        return self.rng.choice(have)

    def peer_listener(self, fam):
        have = self.peer_listeners[fam]
        if not have or (len(have) < 3 and self.rng.random() < 0.3):
            lid, port = self.new_id("PL"), self.port(10000, 19999)
            self.peer.call("listen", id=lid, fam=fam, port=port)
            have.append((lid, port))
        return self.rng.choice(have)

    def size(self):
        return 0 if self.rng.random() < 0.1 else self.rng.randint(1, 20000)

    def open(self, fam, role, talk=True):
        """a connection with data both ways; role out: obs connects, in: the peer does"""
        oid, pid = self.new_id("o"), self.new_id("p")
        if role == "out":
            lid, pport = self.peer_listener(fam)
            oport = self.client_port()
            r = self.obs.call("connect", id=oid, fam=fam, addr=PEER_ADDR[fam], port=pport, sport=oport)
            if r["error"]:
                raise Failure("obs connect failed: %s" % r["error"])
            self.peer.call("accept", listener=lid, id=pid)
            self.count["active_opens"] += 1
        else:
            lid, oport = self.obs_listener(fam)
            pport = self.client_port()
            r = self.peer.call("connect", id=pid, fam=fam, addr=OBS_ADDR[fam], port=oport, sport=pport)
            if r["error"]:
                raise Failure("peer connect failed: %s" % r["error"])
            self.obs.call("accept", listener=lid, id=oid)
            self.count["passive_opens"] += 1
        c = Conn(fam, oid, pid, oport, pport)
        if talk:
            ask, answer = self.size(), self.size()
            if ask:
                self.obs.call("send", id=oid, n=ask)
                self.peer.call("recv", id=pid, n=ask)
            if answer:
                self.peer.call("send", id=pid, n=answer)
                self.obs.call("recv", id=oid, n=answer)
        return c

    def match(self, fam, src, sport, dst, dport):
        ip = NFT_IP[fam]
        return "%s saddr %s %s daddr %s tcp sport %d tcp dport %d" % (ip, src, ip, dst, sport, dport)

    def drop_obs_fin(self, c):
        return self.lab.rule("inet", "input", self.match(c.fam, OBS_ADDR[c.fam], c.oport, PEER_ADDR[c.fam],
                                                         c.pport) + " tcp flags & fin == fin drop")

    # ---- recipes: generators; `yield` separates setup from the final step ----
    def r_ESTABLISHED(self, fam, role):
        c = self.open(fam, role)
        self.expect(c, "ESTABLISHED")
        yield

    def r_TIME_WAIT(self, fam, role):
        """obs closes first, the peer closes on EOF"""
        c = self.open(fam, role)
        yield
        self.obs.call("close", id=c.oid)
        self.peer.call("recv_end", id=c.pid)
        self.peer.call("close", id=c.pid)
        self.obs_state(fam, c.oport, c.pport, "TIME_WAIT")
        self.expect(c, "TIME_WAIT")

    def r_passive_close(self, fam, role):
        """the peer closes first, obs closes on EOF: no row left"""
        c = self.open(fam, role)
        yield
        self.peer.call("close", id=c.pid)
        self.obs.call("recv_end", id=c.oid)
        self.obs.call("close", id=c.oid)
        self.obs_state(fam, c.oport, c.pport, "GONE")
        self.notes["closed_by_peer_first"] += 1

    def r_CLOSE_WAIT(self, fam, role):
        c = self.open(fam, role)
        yield
        if self.rng.random() < 0.5:
            self.peer.call("shutdown", id=c.pid)
        else:
            self.peer.call("close", id=c.pid)
        self.obs.call("recv_end", id=c.oid)
        self.obs_state(fam, c.oport, c.pport, "CLOSE_WAIT")
        self.expect(c, "CLOSE_WAIT")

    def r_FIN_WAIT_2(self, fam, role):
        """obs half-closes; the peer reads the EOF and never closes"""
        c = self.open(fam, role)
        yield
        self.obs.call("shutdown", id=c.oid)
        self.peer.call("recv_end", id=c.pid)
        self.obs_state(fam, c.oport, c.pport, "FIN_WAIT_2")
        self.expect(c, "FIN_WAIT_2")

    def r_FIN_WAIT_1(self, fam, role):
        """the peer drops every FIN obs sends"""
        c = self.open(fam, role)
        yield
        self.drop_obs_fin(c)
        self.obs.call("shutdown", id=c.oid)
        self.obs_state(fam, c.oport, c.pport, "FIN_WAIT_1")
        self.expect(c, "FIN_WAIT_1")

    def r_CLOSING(self, fam, role):
        """obs's FIN is dropped, then the peer half-closes: its FIN reaches obs
        in FIN_WAIT_1 without acknowledging obs's FIN"""
        c = self.open(fam, role)
        yield
        self.drop_obs_fin(c)
        self.obs.call("shutdown", id=c.oid)
        self.obs_state(fam, c.oport, c.pport, "FIN_WAIT_1")
        self.peer.call("shutdown", id=c.pid)
        self.obs.call("recv_end", id=c.oid)
        self.obs_state(fam, c.oport, c.pport, "CLOSING")
        self.expect(c, "CLOSING")

    def r_LAST_ACK(self, fam, role):
        """the peer closes, obs reads the EOF and closes; its FIN is dropped"""
        c = self.open(fam, role)
        self.peer.call("close", id=c.pid)
        self.obs.call("recv_end", id=c.oid)
        self.obs_state(fam, c.oport, c.pport, "CLOSE_WAIT")
        yield
        self.drop_obs_fin(c)
        self.obs.call("close", id=c.oid)
        self.obs_state(fam, c.oport, c.pport, "LAST_ACK")
        self.expect(c, "LAST_ACK")

    def r_SYN_SENT(self, fam, role=None):
        """the peer silently drops obs's SYNs to one port"""
        oport, pport = self.client_port(), self.closed_port()
        self.lab.rule("inet", "input", self.match(fam, OBS_ADDR[fam], oport, PEER_ADDR[fam], pport)
                      + " tcp flags & (syn|ack) == syn drop")
        yield
        oid = self.new_id("o")
        self.obs.call("connect", id=oid, fam=fam, addr=PEER_ADDR[fam], port=pport, sport=oport, wait=False)
        self.obs_state(fam, oport, pport, "SYN_SENT")
        self.rows[Conn(fam, oid, None, oport, pport).key] = "SYN_SENT"
        self.count["active_opens"] += 1

    def half_open(self, fam):
        """the peer connects to an obs listener and drops obs's SYN-ACKs"""
        lid, oport = self.obs_listener(fam)
        pport = self.client_port()
        h = self.lab.rule("inet", "input", self.match(fam, OBS_ADDR[fam], oport, PEER_ADDR[fam], pport)
                          + " tcp flags & (syn|ack) == syn|ack drop")
        pid = self.new_id("p")
        self.peer.call("connect", id=pid, fam=fam, addr=OBS_ADDR[fam], port=oport, sport=pport, wait=False)
        self.obs_state(fam, oport, pport, "SYN_RCVD")
        return Conn(fam, None, pid, oport, pport), h

    def r_SYN_RCVD(self, fam, role=None):
        yield
        c, _ = self.half_open(fam)
        self.expect(c, "SYN_RCVD")

    def r_embryonic_rst(self, fam, role=None):
        """obs in SYN_RCVD; the peer gives up (its SYN_SENT socket closes
        silently) and answers obs's next SYN-ACK with a RST: AttemptFails"""
        c, h = self.half_open(fam)
        self.peer.call("close", id=c.pid)
        self.lab.unrule(h)
        self.count["failed_connection_attempts"] += 1
        self.notes["embryonic_resets"] += 1
        self.later.append(lambda: self.obs_state(fam, c.oport, c.pport, "GONE", timeout=8.0))
        yield

    def r_refused_out(self, fam, role=None):
        """obs connects to a closed peer port: RST"""
        oid, oport = self.new_id("o"), self.client_port()
        r = self.obs.call("connect", id=oid, fam=fam, addr=PEER_ADDR[fam], port=self.closed_port(), sport=oport)
        if r["error"] != "ECONNREFUSED":
            raise Failure("refused_out: %s" % r)
        self.obs.call("close", id=oid)
        self.count["active_opens"] += 1
        self.count["failed_connection_attempts"] += 1
        yield

    def r_refused_in(self, fam, role=None):
        """the peer connects to a closed obs port: obs answers RST"""
        pid = self.new_id("p")
        r = self.peer.call("connect", id=pid, fam=fam, addr=OBS_ADDR[fam], port=self.closed_port(),
                           sport=self.client_port())
        if r["error"] != "ECONNREFUSED":
            raise Failure("refused_in: %s" % r)
        self.peer.call("close", id=pid)
        self.notes["rst_for_closed_obs_port"] += 1
        yield

    def r_icmp_refused(self, fam, role=None):
        """obs connects; the peer drops the first SYN and rejects the
        retransmitted one with ICMP(v6) port unreachable.  (An ICMP error that
        arrives while connect() still holds the socket, as an answer to the
        first SYN on a veth does, is only a soft error and counts nothing.)"""
        oid, oport, pport = self.new_id("o"), self.client_port(), self.closed_port()
        m = self.match(fam, OBS_ADDR[fam], oport, PEER_ADDR[fam], pport)
        h = self.lab.rule("inet", "input", m + " tcp flags & (syn|ack) == syn drop")
        self.obs.call("connect", id=oid, fam=fam, addr=PEER_ADDR[fam], port=pport, sport=oport, wait=False)
        self.obs_state(fam, oport, pport, "SYN_SENT")
        self.lab.rule("inet", "input", m + " reject with icmpx type port-unreachable")
        self.lab.unrule(h)
        self.count["active_opens"] += 1
        self.count["failed_connection_attempts"] += 1
        self.notes["icmp_rejects"] += 1

        def check():
            self.obs_state(fam, oport, pport, "GONE", timeout=6.0)
            err = self.obs.call("sockerr", id=oid)["error"]
            if err != "ECONNREFUSED":
                raise Failure("icmp_refused: socket error %s" % err)
            self.obs.call("close", id=oid)
        self.later.append(check)
        yield

    def r_abort_obs(self, fam, role):
        """obs closes with SO_LINGER {1, 0}: RST from ESTABLISHED"""
        c = self.open(fam, role)
        self.obs.call("close", id=c.oid, abort=True)
        self.peer.call("recv_end", id=c.pid)
        self.peer.call("close", id=c.pid)
        self.obs_state(fam, c.oport, c.pport, "GONE")
        self.count["reset_connections"] += 1
        yield

    def r_abort_peer(self, fam, role):
        c = self.open(fam, role)
        self.peer.call("close", id=c.pid, abort=True)
        self.obs.call("recv_end", id=c.oid)
        self.obs.call("close", id=c.oid)
        self.obs_state(fam, c.oport, c.pport, "GONE")
        self.count["reset_connections"] += 1
        yield

    def r_abort_unread(self, fam, role):
        """obs closes with received data unread: the kernel sends a RST"""
        c = self.open(fam, role)
        n = self.rng.randint(1, 3000)
        self.peer.call("send", id=c.pid, n=n)
        self.obs.call("wait_unread", id=c.oid, n=n)
        self.obs.call("close", id=c.oid)
        self.peer.call("recv_end", id=c.pid)
        self.peer.call("close", id=c.pid)
        self.obs_state(fam, c.oport, c.pport, "GONE")
        self.count["reset_connections"] += 1
        yield

    def r_rst_close_wait(self, fam, role):
        """the peer half-closes (obs: CLOSE_WAIT), then aborts"""
        c = self.open(fam, role)
        self.peer.call("shutdown", id=c.pid)
        self.obs.call("recv_end", id=c.oid)
        self.obs_state(fam, c.oport, c.pport, "CLOSE_WAIT")
        self.peer.call("close", id=c.pid, abort=True)
        self.obs_state(fam, c.oport, c.pport, "GONE")
        self.obs.call("close", id=c.oid)
        self.count["reset_connections"] += 1
        yield

    def r_rst_fin_wait_2(self, fam, role):
        """obs half-closes (FIN_WAIT_2), then the peer aborts: no EstabReset"""
        c = self.open(fam, role)
        self.obs.call("shutdown", id=c.oid)
        self.peer.call("recv_end", id=c.pid)
        self.obs_state(fam, c.oport, c.pport, "FIN_WAIT_2")
        self.peer.call("close", id=c.pid, abort=True)
        self.obs_state(fam, c.oport, c.pport, "GONE")
        self.obs.call("close", id=c.oid)
        self.notes["rst_in_fin_wait_2"] += 1
        yield

    def loss_rules(self, c, moduli):
        """Deterministic loss of c's segments without SYN/FIN/RST: nft counters
        drop every a-th and every b-th one of them, in each direction.  obs->peer
        in the peer's input hook (after the wire), peer->obs in the peer's
        bridge output hook (before the wire, unseen by the peer's TCP)."""
        handles = []
        for (table, chain, src, sport, dst, dport), (a, ka, b, kb) in zip(
                (("inet", "input", OBS_ADDR[c.fam], c.oport, PEER_ADDR[c.fam], c.pport),
                 ("bridge", "output", PEER_ADDR[c.fam], c.pport, OBS_ADDR[c.fam], c.oport)), moduli):
            m = self.match(c.fam, src, sport, dst, dport) + " tcp flags & (syn|fin|rst) == 0"
            handles.append(self.lab.rule(table, chain, m + " numgen inc mod %d == %d drop" % (a, ka)))
            handles.append(self.lab.rule(table, chain, m + " numgen inc mod %d == %d drop" % (b, kb)))
        return handles

    def r_bulk(self, fam, role, lo=600_000, hi=2_000_000):
        """bulk data both ways at once with loss both ways, then an end state"""
        c = self.open(fam, role, talk=False)
        moduli = []
        for _ in range(2):
            a, b = self.rng.randint(18, 45), self.rng.randint(25, 70)
            moduli.append((a, self.rng.randrange(a), b, self.rng.randrange(b)))
        handles = self.loss_rules(c, moduli)
        up, down = self.rng.randint(lo, hi), self.rng.randint(lo, hi)
        tag = self.new_id("pump")
        self.obs.call("pump", id=c.oid, tx=up, rx=down, tag=tag, timeout=90.0)
        self.peer.call("pump", id=c.pid, tx=down, rx=up, tag=tag, timeout=90.0)
        self.obs.call("join", tag=tag, timeout=90.0)
        self.peer.call("join", tag=tag, timeout=90.0)
        for h in handles:
            self.lab.unrule(h)
        self.notes["bulk_bytes"] += up + down
        self.loss.append({"obs": c.key[1], "peer": c.key[2], "bytes_obs_to_peer": up, "bytes_peer_to_obs": down,
                          "drop_every_nth_obs_to_peer": [moduli[0][0], moduli[0][2]],
                          "drop_every_nth_peer_to_obs": [moduli[1][0], moduli[1][2]]})
        end = self.rng.choice(("ESTABLISHED", "TIME_WAIT", "gone"))
        if end == "ESTABLISHED":
            self.expect(c, "ESTABLISHED")
        elif end == "TIME_WAIT":
            self.obs.call("close", id=c.oid)
            self.peer.call("recv_end", id=c.pid)
            self.peer.call("close", id=c.pid)
            self.obs_state(fam, c.oport, c.pport, "TIME_WAIT")
            self.expect(c, "TIME_WAIT")
        else:
            self.peer.call("close", id=c.pid)
            self.obs.call("recv_end", id=c.oid)
            self.obs.call("close", id=c.oid)
            self.obs_state(fam, c.oport, c.pport, "GONE")
        yield

    def r_small_bulk(self, fam, role):
        return self.r_bulk(fam, role, 150_000, 500_000)


# ---------------------------------------------------------------------------
# Scenarios: lists of (recipe, family, role); role None = either, by the seed
# ---------------------------------------------------------------------------
def times(r, lo, hi, recipe, fam, role=None):
    return [(recipe, fam, role)] * r.randint(lo, hi)


def plan_client(r, fam=4):
    return (times(r, 2, 4, "ESTABLISHED", fam, "out") + times(r, 2, 4, "TIME_WAIT", fam, "out")
            + times(r, 1, 2, "passive_close", fam, "out") + times(r, 0, 1, "CLOSE_WAIT", fam, "out"))


def plan_server(r, fam=4):
    return (times(r, 2, 3, "ESTABLISHED", fam, "in") + times(r, 1, 3, "CLOSE_WAIT", fam, "in")
            + times(r, 1, 2, "TIME_WAIT", fam, "in") + times(r, 0, 1, "passive_close", fam, "in")
            + times(r, 1, 2, "LAST_ACK", fam, "in") + times(r, 1, 2, "SYN_RCVD", fam))


def plan_refused(r, fam=4):
    return ([("ESTABLISHED", fam, "out")] + times(r, 2, 4, "refused_out", fam)
            + times(r, 2, 4, "refused_in", fam) + [("icmp_refused", fam, None)])


def plan_resets(r, fam=4):
    return ([("embryonic_rst", fam, None)] + times(r, 1, 2, "ESTABLISHED", fam)
            + times(r, 1, 3, "abort_obs", fam) + times(r, 1, 3, "abort_peer", fam)
            + times(r, 1, 2, "abort_unread", fam) + times(r, 1, 2, "rst_close_wait", fam)
            + [("rst_fin_wait_2", fam, None)])


def plan_halfclose(r, fam=4):
    return (times(r, 1, 1, "ESTABLISHED", fam) + times(r, 1, 3, "FIN_WAIT_2", fam)
            + times(r, 1, 2, "FIN_WAIT_1", fam) + times(r, 1, 2, "CLOSING", fam)
            + times(r, 1, 2, "SYN_SENT", fam))


def plan_loss(r, fam=4):
    return [("bulk", fam, "out"), ("bulk", fam, "in")]


def plan_ipv6(r):
    """every state over IPv6 only, plus refusals both ways"""
    return (times(r, 1, 3, "ESTABLISHED", 6) + times(r, 1, 2, "TIME_WAIT", 6)
            + times(r, 1, 2, "CLOSE_WAIT", 6) + times(r, 0, 1, "passive_close", 6)
            + times(r, 1, 2, "FIN_WAIT_2", 6) + times(r, 1, 1, "FIN_WAIT_1", 6)
            + times(r, 1, 1, "CLOSING", 6) + times(r, 1, 2, "LAST_ACK", 6)
            + times(r, 1, 1, "SYN_SENT", 6) + times(r, 1, 2, "SYN_RCVD", 6)
            + times(r, 1, 2, "refused_out", 6) + times(r, 1, 2, "refused_in", 6)
            + times(r, 0, 1, "icmp_refused", 6) + times(r, 0, 1, "abort_peer", 6))


def plan_mixed(r):
    """everything, each element's family picked by the seed; every state, every
    reset and refusal mechanism, and one lossy bulk connection per family"""
    fam = lambda: r.choice((4, 6))  # noqa: E731
    spec = [("ESTABLISHED", 1, 4), ("TIME_WAIT", 1, 3), ("passive_close", 0, 2), ("CLOSE_WAIT", 1, 3),
            ("FIN_WAIT_2", 1, 3), ("FIN_WAIT_1", 1, 2), ("CLOSING", 1, 2), ("LAST_ACK", 1, 3),
            ("SYN_SENT", 1, 2), ("SYN_RCVD", 1, 2), ("refused_out", 1, 3), ("refused_in", 1, 3),
            ("icmp_refused", 1, 2), ("embryonic_rst", 1, 2), ("abort_obs", 1, 2), ("abort_peer", 1, 2),
            ("abort_unread", 1, 1), ("rst_close_wait", 1, 1), ("rst_fin_wait_2", 1, 1)]
    plan = [(name, fam(), None) for name, lo, hi in spec for _ in range(r.randint(lo, hi))]
    return plan + [("small_bulk", 4, None), ("small_bulk", 6, None)]


SCENARIOS = {
    "client": (plan_client, 1, "obs connects out: ESTABLISHED, TIME_WAIT (obs closed first), CLOSE_WAIT "
                               "(0-1), and connections the peer closed first (no row)"),
    "server": (plan_server, 3, "1-3 obs listeners: ESTABLISHED, CLOSE_WAIT, TIME_WAIT, LAST_ACK (obs's FIN "
                               "dropped), SYN_RCVD (obs's SYN-ACKs dropped)"),
    "refused": (plan_refused, 1, "1 ESTABLISHED; obs refused by RST, obs refusing with RST, 1 connect "
                                 "refused by ICMP port unreachable"),
    "resets": (plan_resets, 2, "embryonic reset of a SYN_RCVD, SO_LINGER aborts both ways, close() with "
                               "unread data, RST in CLOSE_WAIT, RST in FIN_WAIT_2; 1-2 ESTABLISHED"),
    "halfclose": (plan_halfclose, 2, "FIN_WAIT_2, FIN_WAIT_1 (FIN dropped), CLOSING (FIN dropped, then the "
                                     "peer's FIN), SYN_SENT (SYNs dropped), 1 ESTABLISHED"),
    "loss": (plan_loss, 1, "2 bulk connections (obs client and server), 0.6-2 MB each way, 3-10 % loss "
                           "each way; then ESTABLISHED, TIME_WAIT or closed"),
    "ipv6": (plan_ipv6, 2, "every TCP state over IPv6 only, refusals both ways"),
    "mixed": (plan_mixed, 3, "everything above, IPv4 and IPv6 mixed, every state, a lossy bulk "
                             "connection per family"),
}


def run_plan(bench, plan, rng):
    """Phase A: everything that settles at once (slow-to-resolve items first);
    then the timer-driven final steps, close together in time."""
    slow = [p for p in plan if p[0] in SLOW]
    rest = [p for p in plan if p[0] not in SLOW]
    rng.shuffle(rest)
    timed = []
    for name, fam, role in slow + rest:
        role = role or rng.choice(("out", "in"))
        gen = getattr(bench, "r_" + name)(fam, role)
        next(gen)                                       # setup
        if name in TIMED:
            timed.append(gen)
        else:
            for _ in gen:
                pass
    for check in bench.later:
        check()
    rng.shuffle(timed)
    t0 = time.monotonic()
    for gen in timed:
        for _ in gen:
            pass
    return time.monotonic() - t0, len(timed)


# ===========================================================================
def build_truth(args, view, attempts, view_b, bench, cut, problems, lab, ruleset, live, t_start, plan, kernel):
    raw = view["raw"]
    conns = [{"proto": p, "local": l, "foreign": f, "state": s} for p, l, f, s, _ in view["rows"] if s != "LISTEN"]
    listening = [{"proto": p, "local": l, "state": s} for p, l, f, s, _ in view["rows"] if s == "LISTEN"]
    tcp = {k: raw[n] for k, n in TCP_MIB}
    snapshot_time = (view["t"][1] + view_b["t"][0]) / 2.0

    # per-family TCP truth.  Linux keeps one Tcp MIB for both families; the
    # kernel's own per-family figures exist only for CurrEstab (from the socket
    # table), or for all eight counters when only one family carried TCP.
    per_family = {}
    used = [f for f in ("ipv4", "ipv6") if sum(cut["tcp_frames"][f].values())]
    for f, proto in (("ipv4", "TCP"), ("ipv6", "TCPv6")):
        cur = sum(1 for c in conns if c["proto"] == proto and c["state"] in ("ESTABLISHED", "CLOSE_WAIT"))
        if len(used) <= 1:
            per_family[f] = dict(tcp) if f in used else {k: 0 for k, _ in TCP_MIB}
        else:
            per_family[f] = {k: (cur if k == "current_connections" else None) for k, _ in TCP_MIB}
    per_family["source"] = ("whole MIB: only %s carried TCP" % (used[0] if used else "no family")
                            if len(used) <= 1 else "current_connections from the socket table; the other "
                            "counters are kept for both families together (see tcp)")

    truth = {
        "scenario": args.scenario, "seed": args.seed, "host": [OBS_ADDR[4], OBS_ADDR[6]],
        "snapshot_time": snapshot_time,
        "connections": conns, "listening": listening,
        "udp_endpoints": [{"proto": p, "local": l, "foreign": f} for p, l, f, _, _ in view["udp"]],
        "tcp": tcp,
        "interface": {k: view["iface"][k] for k in ("rx_bytes", "rx_packets", "tx_bytes", "tx_packets",
                                                    "rx_multicast")},
        "raw": {k: v for k, v in sorted(raw.items()) if k not in NOT_COUNTERS},
        "meta": {
            "recorder": "tools/record_truth.py",
            "argv": sys.argv[1:],
            "kernel": kernel,
            "peer": [PEER_ADDR[4], PEER_ADDR[6]],
            "state_counts": dict(sorted(collections.Counter(c["state"] for c in conns).items())),
            "listen_count": len(listening),
            "tcp_per_family": per_family,
            "snapshot": {"attempts": attempts, "reads": [view["t"][0], view_b["t"][1]],
                         "quiet_gap": [view["t"][1], view_b["t"][0]],
                         "rule": "two identical reads of ss, /proc/net/{snmp,netstat,snmp6} and the link "
                                 "counters; the capture keeps the first rx_packets + tx_packets frames"},
            "capture": dict(cut, snaplen=args.snaplen, command=lab.capture_cmd_used,
                            tcpdump_kernel_drops=kernel_drops(lab.capture_err),
                            interface_dropped={"rx": view["iface"]["rx_dropped"], "tx": view["iface"]["tx_dropped"]}),
            "expect": {"counters": dict(bench.count, current_connections=sum(
                1 for s in bench.rows.values() if s in ("ESTABLISHED", "CLOSE_WAIT"))),
                "ok": not problems, "problems": problems},
            "plan": [list(p) for p in plan],
            "notes": dict(bench.notes, **({"loss": bench.loss} if bench.loss else {})),
            "nft_ruleset": {"peer": ruleset},
            "obs_mac": view["mac"],
            "wall_seconds": round(time.time() - t_start, 2),
        },
    }
    if live:
        after = None if live["t_exit"] is None else round(live["t_exit"] - snapshot_time, 3)
        truth["meta"]["live"] = {
            "cmd": live["cmd"], "iface": live["iface"], "exit_code": live["exit_code"],
            "killed": live["killed"], "exited_before_sigint": live["t_sigint"] is None,
            "sigint_after_snapshot": None if live["t_sigint"] is None else round(live["t_sigint"] - snapshot_time, 3),
            "seconds_after_snapshot": after,
            "exit_seconds": None if live["t_sigint"] is None else round(live["t_exit"] - live["t_sigint"], 3),
            "frames_after_snapshot": live.get("frames_after_snapshot")}
    return truth


def kernel_drops(stderr_text):
    m = re.search(r"(\d+) packets? dropped by kernel", stderr_text or "")
    return int(m.group(1)) if m else None


def check_expectations(bench, view, cut):
    problems = []
    got = {(p, l, f): s for p, l, f, s, _ in view["rows"] if s != "LISTEN"}
    for k in sorted(set(got) | set(bench.rows)):
        if got.get(k) != bench.rows.get(k):
            problems.append("row %s %s %s: planned %s, kernel %s" % (k + (bench.rows.get(k), got.get(k))))
    listen = {(p, int(l.rsplit(":", 1)[1])) for p, l, f, s, _ in view["rows"] if s == "LISTEN"}
    if listen != bench.listen:
        problems.append("listeners: planned %s, kernel %s" % (sorted(bench.listen), sorted(listen)))
    raw = view["raw"]
    want = dict(bench.count, current_connections=sum(1 for s in bench.rows.values()
                                                     if s in ("ESTABLISHED", "CLOSE_WAIT")))
    for k, mib in TCP_MIB:
        if k in want and raw[mib] != want[k]:
            problems.append("%s: planned %d, kernel %d" % (k, want[k], raw[mib]))
    to_obs = cut["tcp_frames"]["ipv4"]["to_obs"] + cut["tcp_frames"]["ipv6"]["to_obs"]
    if to_obs != raw["TcpInSegs"]:
        problems.append("InSegs %d but the capture holds %d TCP frames to obs" % (raw["TcpInSegs"], to_obs))
    for p, l, f, s, q in view["udp"]:
        problems.append("unexpected UDP socket in obs: %s %s %s" % (p, l, f))
    for d in ("rx_dropped", "tx_dropped"):
        if view["iface"][d]:
            problems.append("obs's link %s = %d" % (d, view["iface"][d]))
    return problems


def discard(outdir, keep_full):
    """a run that did not finish leaves no partial case behind"""
    for name in ("capture.pcap", "live.json", "live.err") + (() if keep_full else ("capture_full.pcap",)):
        try:
            os.unlink(os.path.join(outdir, name))
        except FileNotFoundError:
            pass


def stale_namespaces():
    out = sh(["ip", "netns", "list"], check=False)
    stale = []
    for line in out.splitlines():
        m = re.match(r"(wtr(\d+)-(obs|peer))\b", line)
        if m and not os.path.exists("/proc/%s" % m.group(2)):
            stale.append(m.group(1))
    return stale


def main():
    descr = "\n".join("  %-10s %s" % (k, v[2]) for k, v in SCENARIOS.items())
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] + "\n\nScenarios:\n" + descr,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example: sudo python3 tools/record_truth.py mixed /tmp/mixed-s5 --seed 5 && "
               "target/release/wirestat -r /tmp/mixed-s5/capture.pcap --host 10.201.0.1 --host fd00:201::1 "
               "-a -s --format json > out.json && python3 ../shared/oracle/score.py /tmp/mixed-s5/truth.json out.json")
    ap.add_argument("scenario", nargs="?", choices=sorted(SCENARIOS))
    ap.add_argument("dir", nargs="?", help="case directory to write (capture.pcap, truth.json)")
    ap.add_argument("--seed", type=int, default=1, help="picks counts, ports, sizes, families and loss (default 1)")
    ap.add_argument("--snaplen", type=int, default=160)
    ap.add_argument("--capture-cmd", default=DEFAULT_CAPTURE, metavar="TEMPLATE",
                    help="capture command run inside obs; {iface}, {out} (a classic pcap file to write) "
                         "and {snaplen} are filled in; it must stop on SIGINT (default: %(default)s)")
    ap.add_argument("--live-cmd", metavar="TEMPLATE",
                    help="a live tool run inside obs from before the first frame until just after the "
                         "snapshot, then sent SIGINT; {iface} is obs's interface; stdout -> DIR/live.json, "
                         "stderr -> DIR/live.err, outcome in truth.json meta.live. One command, split like a "
                         "shell would; for a pipeline use sh -c '...'")
    ap.add_argument("--live-warmup", type=float, default=1.5, help="seconds the live tool gets to open its "
                    "capture before the link comes up (default 1.5)")
    ap.add_argument("--live-grace", type=float, default=30.0, help="seconds after SIGINT before SIGKILL")
    ap.add_argument("--settle", type=float, default=3.3,
                    help="seconds between the last timer-driven step and the first kernel read (default 3.3: "
                         "between the 3rd and 5th retransmissions of what was set up last)")
    ap.add_argument("--keep-full", action="store_true", help="also keep the uncut capture (capture_full.pcap)")
    ap.add_argument("--time-limit", type=int, default=240, help="abort (and clean up) after this many seconds")
    ap.add_argument("--clean-stale", action="store_true",
                    help="delete namespaces left by a recorder that was killed (SIGKILL), then exit")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker_main()
    if os.geteuid() != 0:
        sys.exit("record_truth.py needs root (network namespaces, nftables, packet capture)")
    if args.clean_stale:
        for ns in stale_namespaces():
            log("deleting stale namespace", ns)
            Lab(Janitor()).remove_ns(ns)
        return 0
    if not args.scenario or not args.dir:
        ap.error("SCENARIO and DIR are required")
    for tool in ("ip", "nft", "ethtool", "ss") + ((shlex.split(args.capture_cmd)[0],)):
        if not any(os.access(os.path.join(d, tool), os.X_OK) for d in os.environ.get("PATH", "").split(":")):
            sys.exit("%s is not installed (apt-get install iproute2 nftables ethtool tcpdump)" % tool)
    for ns in stale_namespaces():
        log("warning: namespace %s is left from a killed run (--clean-stale removes it)" % ns)

    outdir = os.path.abspath(args.dir)
    os.makedirs(outdir, exist_ok=True)
    for name in ("capture.pcap", "truth.json", "live.json", "live.err", "capture_full.pcap"):
        if os.path.exists(os.path.join(outdir, name)):
            os.unlink(os.path.join(outdir, name))
    full = os.path.join(outdir, "capture_full.pcap")
    rng = random.Random("wirestat-truth/%s/%d" % (args.scenario, args.seed))
    plan_fn, max_listeners, _ = SCENARIOS[args.scenario]
    plan = plan_fn(rng)

    def on_signal(signum, _frame):
        raise Interrupted(signum)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
        signal.signal(s, on_signal)
    signal.alarm(args.time_limit)

    t_start = time.time()
    janitor = Janitor()
    lab = Lab(janitor)
    live = None
    try:
        lab.build()
        obs, peer = Remote(lab.obs, "obs", janitor), Remote(lab.peer, "peer", janitor)
        lab.capture_cmd_used = lab.start_capture(args.capture_cmd, full, args.snaplen)
        if args.live_cmd:
            lab.start_live(args.live_cmd, outdir)
            time.sleep(args.live_warmup)
            if lab.live.poll() is not None:
                log("warning: the live tool exited during its warm-up (status %d); see %s"
                    % (lab.live.returncode, os.path.join(outdir, "live.err")))
        lab.carrier_up()
        bench = Bench(lab, obs, peer, rng, max_listeners)
        log("%s seed %d: %d steps" % (args.scenario, args.seed, len(plan)))
        timed_secs, n_timed = run_plan(bench, plan, rng)
        if n_timed:
            if timed_secs > 1.5:
                log("warning: the timer-driven steps took %.2f s (the quiet window shrinks)" % timed_secs)
            time.sleep(args.settle)
        else:
            time.sleep(0.5)        # delayed ACKs, loss probes
        view, view_b, attempts = lab.settled_view(gap=0.25, tries=40)
        snapshot_time = (view["t"][1] + view_b["t"][0]) / 2.0
        if args.live_cmd:
            live = lab.stop_live(args.live_grace)
            if live["t_sigint"] is None:
                log("live tool had exited before the snapshot, status %s (see live.err)" % live["exit_code"])
            else:
                log("live tool exit status %s, %.3f s after SIGINT%s" % (
                    live["exit_code"], live["t_exit"] - live["t_sigint"],
                    " (SIGKILLed after %.0f s)" % args.live_grace if live["killed"] else ""))
        ruleset = lab.ruleset()
        time.sleep(0.3)
        lab.stop_capture()
        cut, problems = cut_capture(full, os.path.join(outdir, "capture.pcap"), view, view_b)
        if live and live["t_exit"] is not None:
            live["frames_after_snapshot"] = frames_between(full, snapshot_time, live["t_exit"])
        kernel = os.uname().release
    except Interrupted as e:
        janitor.run()
        discard(outdir, args.keep_full)
        log("%s: cleaned up, nothing recorded" % ("time limit reached" if e.signum == signal.SIGALRM
                                                   else "interrupted (signal %d)" % e.signum))
        return 128 + e.signum if e.signum != signal.SIGALRM else 1
    except Failure as e:
        janitor.run()
        discard(outdir, args.keep_full)
        log("failed: %s" % e)
        return 1
    finally:
        janitor.run()
        signal.alarm(0)
    if not args.keep_full:
        os.unlink(full)
    problems = check_expectations(bench, view, cut) + problems
    drops = kernel_drops(lab.capture_err)
    if drops:
        problems.append("the capture lost %d frames (kernel drops)" % drops)
    truth = build_truth(args, view, attempts, view_b, bench, cut, problems, lab, ruleset, live, t_start, plan,
                        kernel)
    with open(os.path.join(outdir, "truth.json"), "w") as f:
        json.dump(truth, f, indent=1)
        f.write("\n")
    log("%s: %d rows %s, %d listeners, tcp %s, %d frames, %d kernel reads, %.1f s"
        % (outdir, len(truth["connections"]), truth["meta"]["state_counts"], len(truth["listening"]),
           " ".join("%s=%d" % (k, v) for k, v in truth["tcp"].items()), cut["kept"], attempts + 1,
           truth["meta"]["wall_seconds"]))
    for p in problems:
        log("CHECK FAILED:", p)
    return 2 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
