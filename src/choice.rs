//! Closed sets of values chosen by name (methods, formats, input layouts, backends): the names
//! users type, the manifest records and the summary prints are the ones [`Choice::name`] gives,
//! so the command layer builds its parsers from [`Choice::ALL`] without the library knowing it.

/// A value of a closed set, named by one lowercase word.
pub trait Choice: Copy + PartialEq + Send + Sync + 'static {
    /// Every value, in the order help texts list them.
    const ALL: &'static [Self];

    /// The name users type and the summary prints.
    fn name(self) -> &'static str;

    /// The value named `name`.
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.name() == name)
    }
}

/// Implements [`Choice`] for a fieldless enum: `impl_choice!(Method { Utk => "utk", … })`.
#[macro_export]
macro_rules! impl_choice {
    ($t:ident { $($v:ident => $n:literal),+ $(,)? }) => {
        impl $crate::choice::Choice for $t {
            const ALL: &'static [Self] = &[$($t::$v),+];

            fn name(self) -> &'static str {
                match self {
                    $($t::$v => $n),+
                }
            }
        }
    };
}
