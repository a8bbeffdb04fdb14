//! Counter groups declared once: a group's fields, their JSON keys and their
//! text labels come from one declaration, in one order, so the struct, the
//! JSON writer and the text writer cannot drift apart.

/// Declares a struct of `u64` counters with, for each, its JSON key and its
/// text label; generates `FIELDS`, `add` and `entries`.
macro_rules! counter_group {
    (
        $(#[$m:meta])*
        pub struct $name:ident {
            $( $(#[$fm:meta])* $field:ident: $key:literal, $label:literal; )*
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
