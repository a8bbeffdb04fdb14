//! Counter groups declared once: a group's fields, their JSON keys and their
//! text labels come from one declaration, in one order, so the struct, the
//! JSON writer and the text writer cannot drift apart.

/// Declares a struct of `u64` counters with, for each, its JSON key and its
/// text label (and optionally a second label, Linux netstat's wording);
/// generates `FIELDS`, `LINUX_LABELS`, `add` and `entries`.
macro_rules! counter_group {
    (
        $(#[$m:meta])*
        pub struct $name:ident {
            $( $(#[$fm:meta])* $field:ident: $key:literal, $label:literal $(, $linux:literal)?; )*
        }
    ) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fm])* pub $field: u64, )*
        }

        impl $name {
            /// (JSON key, text label) of every counter, in declaration order.
            pub const FIELDS: &'static [(&'static str, &'static str)] = &[$(($key, $label)),*];

            /// Linux netstat's label of every counter, where the group declares one.
            #[allow(dead_code)]
            pub const LINUX_LABELS: &'static [&'static str] = &[$($($linux,)?)*];

            pub fn add(&mut self, o: &Self) {
                $( self.$field += o.$field; )*
            }

            /// Every counter as (JSON key, text label, value), in declaration order.
            pub fn entries(&self) -> impl Iterator<Item = (&'static str, &'static str, u64)> {
                Self::FIELDS.iter().zip([$(self.$field),*]).map(|(&(k, l), v)| (k, l, v))
            }
        }
    };
}
