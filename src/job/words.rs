//! The fixed words the job's vocabulary is stored and shown as.
//!
//! Every enum of the job's life (state, outcome, action kind, step) is stored as the lower-case word
//! named here and in `migrations/0001_initial.sql`; the migration's CHECK constraints and
//! [`TextEnum::parse`] accept exactly the same words, so a stored value the code cannot read is
//! reported by the store as corrupt, never guessed.

/// An enum stored as one fixed word.
pub trait TextEnum: Sized + Copy + 'static {
    /// Every member, with its stored word.
    const MEMBERS: &'static [(Self, &'static str)];

    /// The stored word.
    fn as_str(self) -> &'static str
    where
        Self: PartialEq,
    {
        Self::MEMBERS
            .iter()
            .find(|(member, _)| *member == self)
            .map_or("", |(_, word)| word)
    }

    /// The member stored as `word`, if any.
    fn parse(word: &str) -> Option<Self> {
        Self::MEMBERS
            .iter()
            .find(|(_, w)| *w == word)
            .map(|(member, _)| *member)
    }
}

/// Implements [`TextEnum`] for an enum from a list of `Member => "word"`.
macro_rules! text_enum {
    ($ty:ty { $($member:ident => $word:literal),+ $(,)? }) => {
        impl TextEnum for $ty {
            const MEMBERS: &'static [(Self, &'static str)] = &[$((<$ty>::$member, $word)),+];
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use text_enum;
