//! PHI newtypes. They have no `Display`, print `[redacted]` from `Debug`, and
//! give their value only through an explicit `.expose()`.

use std::fmt;

macro_rules! phi {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);
        impl $name {
            /// Wraps a value.
            pub fn new(s: impl Into<String>) -> Self { Self(s.into()) }
            /// The value itself, for the one place that needs it.
            pub fn expose(&self) -> &str { &self.0 }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

phi!(
    /// A phone number.
    Phone
);
phi!(
    /// An email address.
    Email
);
phi!(
    /// A person's name.
    PersonName
);
phi!(
    /// Rendered message text (may hold a first name, a date, a place).
    MessageText
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let p = Phone::new("+12125550123");
        assert_eq!(format!("{p:?}"), "Phone([redacted])");
        assert_eq!(p.expose(), "+12125550123");
        assert!(!format!("{:?}", PersonName::new("Ana")).contains("Ana"));
    }
}
