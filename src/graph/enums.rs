//! Graph's enumerations, kept open.
//!
//! Graph enums are *evolvable*: Microsoft adds members after `unknownFutureValue` and returns them when a
//! request says `Prefer: include-unknown-enum-members` (and may start returning new ones at any time).
//! A closed Rust enum would turn such a value into a deserialisation failure and lose the whole job, so
//! every enum here has an `Other(String)` variant that keeps the member verbatim and writes it back
//! unchanged. Member names are Microsoft's, in CSDL order; a test checks that each member of the print
//! enumerations in `tests/data/graph/print-openapi-v1.0.json` parses into its own variant.
//!
//! Invariant: a known member is always parsed into its own variant, never into `Other`, so `==` works.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares an open enum: named members with their wire names, plus `Other(String)`.
macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $(
                #[doc = concat!("`", $wire, "`")]
                $variant,
            )+
            /// A member this build does not know; kept verbatim so it round-trips.
            Other(String),
        }

        impl $name {
            /// The member's name on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)+
                    Self::Other(other) => other,
                }
            }
        }

        impl From<&str> for $name {
            fn from(wire: &str) -> Self {
                match wire {
                    $($wire => Self::$variant,)+
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let wire = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
                Ok(Self::from(wire.as_ref()))
            }
        }
    };
}

open_enum! {
    /// `printColorMode`.
    PrintColorMode {
        BlackAndWhite => "blackAndWhite",
        Grayscale => "grayscale",
        Color => "color",
        Auto => "auto",
        UnknownFutureValue => "unknownFutureValue",
    }
}

open_enum! {
    /// `printDuplexMode`.
    PrintDuplexMode {
        FlipOnLongEdge => "flipOnLongEdge",
        FlipOnShortEdge => "flipOnShortEdge",
        OneSided => "oneSided",
        UnknownFutureValue => "unknownFutureValue",
    }
}

open_enum! {
    /// `printerFeedOrientation`.
    PrinterFeedOrientation {
        LongEdgeFirst => "longEdgeFirst",
        ShortEdgeFirst => "shortEdgeFirst",
        UnknownFutureValue => "unknownFutureValue",
    }
}

open_enum! {
    /// `printOrientation`.
    PrintOrientation {
        Portrait => "portrait",
        Landscape => "landscape",
        ReverseLandscape => "reverseLandscape",
        ReversePortrait => "reversePortrait",
        UnknownFutureValue => "unknownFutureValue",
    }
}

open_enum! {
    /// `printQuality`.
    PrintQuality {
        Low => "low",
        Medium => "medium",
        High => "high",
        UnknownFutureValue => "unknownFutureValue",
    }
}

open_enum! {
    /// `printScaling`.
    PrintScaling {
        Auto => "auto",
        ShrinkToFit => "shrinkToFit",
        Fill => "fill",
        Fit => "fit",
        None => "none",
        UnknownFutureValue => "unknownFutureValue",
    }
}

open_enum! {
    /// `printMultipageLayout`.
    PrintMultipageLayout {
        ClockwiseFromTopLeft => "clockwiseFromTopLeft",
        CounterclockwiseFromTopLeft => "counterclockwiseFromTopLeft",
        CounterclockwiseFromTopRight => "counterclockwiseFromTopRight",
        ClockwiseFromTopRight => "clockwiseFromTopRight",
        CounterclockwiseFromBottomLeft => "counterclockwiseFromBottomLeft",
        ClockwiseFromBottomLeft => "clockwiseFromBottomLeft",
        CounterclockwiseFromBottomRight => "counterclockwiseFromBottomRight",
        ClockwiseFromBottomRight => "clockwiseFromBottomRight",
        UnknownFutureValue => "unknownFutureValue",
    }
}

open_enum! {
    /// `printFinishing`, including the members after `unknownFutureValue` (Graph returns those only
    /// with `Prefer: include-unknown-enum-members`).
    PrintFinishing {
        None => "none",
        Staple => "staple",
        Punch => "punch",
        Cover => "cover",
        Bind => "bind",
        SaddleStitch => "saddleStitch",
        StitchEdge => "stitchEdge",
        StapleTopLeft => "stapleTopLeft",
        StapleBottomLeft => "stapleBottomLeft",
        StapleTopRight => "stapleTopRight",
        StapleBottomRight => "stapleBottomRight",
        StitchLeftEdge => "stitchLeftEdge",
        StitchTopEdge => "stitchTopEdge",
        StitchRightEdge => "stitchRightEdge",
        StitchBottomEdge => "stitchBottomEdge",
        StapleDualLeft => "stapleDualLeft",
        StapleDualTop => "stapleDualTop",
        StapleDualRight => "stapleDualRight",
        StapleDualBottom => "stapleDualBottom",
        UnknownFutureValue => "unknownFutureValue",
        StapleTripleLeft => "stapleTripleLeft",
        StapleTripleTop => "stapleTripleTop",
        StapleTripleRight => "stapleTripleRight",
        StapleTripleBottom => "stapleTripleBottom",
        BindLeft => "bindLeft",
        BindTop => "bindTop",
        BindRight => "bindRight",
        BindBottom => "bindBottom",
        FoldAccordion => "foldAccordion",
        FoldDoubleGate => "foldDoubleGate",
        FoldGate => "foldGate",
        FoldHalf => "foldHalf",
        FoldHalfZ => "foldHalfZ",
        FoldLeftGate => "foldLeftGate",
        FoldLetter => "foldLetter",
        FoldParallel => "foldParallel",
        FoldPoster => "foldPoster",
        FoldRightGate => "foldRightGate",
        FoldZ => "foldZ",
        FoldEngineeringZ => "foldEngineeringZ",
        PunchTopLeft => "punchTopLeft",
        PunchBottomLeft => "punchBottomLeft",
        PunchTopRight => "punchTopRight",
        PunchBottomRight => "punchBottomRight",
        PunchDualLeft => "punchDualLeft",
        PunchDualTop => "punchDualTop",
        PunchDualRight => "punchDualRight",
        PunchDualBottom => "punchDualBottom",
        PunchTripleLeft => "punchTripleLeft",
        PunchTripleTop => "punchTripleTop",
        PunchTripleRight => "punchTripleRight",
        PunchTripleBottom => "punchTripleBottom",
        PunchQuadLeft => "punchQuadLeft",
        PunchQuadTop => "punchQuadTop",
        PunchQuadRight => "punchQuadRight",
        PunchQuadBottom => "punchQuadBottom",
        Fold => "fold",
        Trim => "trim",
        Bale => "bale",
        BookletMaker => "bookletMaker",
        Coat => "coat",
        Laminate => "laminate",
        TrimAfterPages => "trimAfterPages",
        TrimAfterDocuments => "trimAfterDocuments",
        TrimAfterCopies => "trimAfterCopies",
        TrimAfterJob => "trimAfterJob",
    }
}

open_enum! {
    /// `printJobProcessingState`: where a print job is in its life.
    PrintJobProcessingState {
        Unknown => "unknown",
        Pending => "pending",
        Processing => "processing",
        Paused => "paused",
        Stopped => "stopped",
        Completed => "completed",
        Canceled => "canceled",
        Aborted => "aborted",
        UnknownFutureValue => "unknownFutureValue",
    }
}

open_enum! {
    /// `printJobStateDetail` (the docs page calls it `printJobProcessingDetail`).
    PrintJobStateDetail {
        UploadPending => "uploadPending",
        Transforming => "transforming",
        CompletedSuccessfully => "completedSuccessfully",
        CompletedWithWarnings => "completedWithWarnings",
        CompletedWithErrors => "completedWithErrors",
        ReleaseWait => "releaseWait",
        Interpreting => "interpreting",
        UnknownFutureValue => "unknownFutureValue",
    }
}

open_enum! {
    /// `printTaskProcessingState`: `processing` holds the job until we set `completed` or `aborted`.
    PrintTaskProcessingState {
        Pending => "pending",
        Processing => "processing",
        Completed => "completed",
        Aborted => "aborted",
        UnknownFutureValue => "unknownFutureValue",
    }
}

open_enum! {
    /// `printEvent`: what fires a task trigger.
    PrintEvent {
        JobStarted => "jobStarted",
        UnknownFutureValue => "unknownFutureValue",
    }
}

open_enum! {
    /// `printerProcessingState`. (Its 600-member companion `printerProcessingStateDetail` is kept as
    /// plain strings in [`super::model::PrinterStatus`]: the daemon only displays it.)
    PrinterProcessingState {
        Unknown => "unknown",
        Idle => "idle",
        Processing => "processing",
        Stopped => "stopped",
        UnknownFutureValue => "unknownFutureValue",
    }
}

open_enum! {
    /// `changeType` of one change notification.
    ChangeType {
        Created => "created",
        Updated => "updated",
        Deleted => "deleted",
    }
}

open_enum! {
    /// `lifecycleEventType`: for print resources only `reauthorizationRequired` is documented.
    LifecycleEvent {
        Missed => "missed",
        SubscriptionRemoved => "subscriptionRemoved",
        ReauthorizationRequired => "reauthorizationRequired",
        UnknownFutureValue => "unknownFutureValue",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_colour_mode_round_trips_verbatim() {
        let parsed: PrintColorMode = serde_json::from_str("\"sepia\"").expect("a string parses");
        assert_eq!(parsed, PrintColorMode::Other("sepia".to_owned()));
        assert_eq!(
            serde_json::to_string(&parsed).expect("serialises"),
            "\"sepia\""
        );
    }

    #[test]
    fn a_known_member_parses_into_its_own_variant() {
        let parsed: PrintFinishing =
            serde_json::from_str("\"trimAfterJob\"").expect("a string parses");
        assert_eq!(parsed, PrintFinishing::TrimAfterJob);
        assert_eq!(PrintDuplexMode::from("oneSided"), PrintDuplexMode::OneSided);
    }

    #[test]
    fn a_non_string_member_is_an_error_not_a_panic() {
        assert!(serde_json::from_str::<PrintQuality>("3").is_err());
    }
}
