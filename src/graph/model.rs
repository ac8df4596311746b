//! The Graph print resources the daemon reads and writes, with Graph's exact camelCase names.
//!
//! Invariants:
//! - unknown JSON properties are ignored (never `deny_unknown_fields`): Graph adds properties freely;
//! - every enum is open (see [`super::enums`]), so a new member never loses a job;
//! - `None` is never serialised, so a [`PrintJobConfiguration`] sent in a PATCH or redirect carries only
//!   the options that were set (the rest keep their values on Graph's side);
//! - properties Graph documents as non-null but that a trimmed response could omit are defaulted rather
//!   than rejected, except identifiers, without which a resource is useless.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use super::enums::*;
use super::error::GraphError;

/// One page of a Graph collection; `next_link` is the absolute URL of the next page, if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items on this page.
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    /// `@odata.nextLink`: follow it as given until it is absent.
    #[serde(
        rename = "@odata.nextLink",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub next_link: Option<String>,
}

/// `printJob`: a user's job on a printer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrintJob {
    /// The job id (numeric-looking, but opaque).
    pub id: String,
    /// When a printer acknowledged the job.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub acknowledged_date_time: Option<OffsetDateTime>,
    /// The print options; the only property that can be updated.
    #[serde(default)]
    pub configuration: PrintJobConfiguration,
    /// Who printed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<UserIdentity>,
    /// When it was submitted.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_date_time: Option<OffsetDateTime>,
    /// A printer error code, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i32>,
    /// True once a printer may fetch the document.
    #[serde(default)]
    pub is_fetchable: bool,
    /// URL of the job this one was redirected from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirected_from: Option<String>,
    /// URL of the job this one was redirected to: set once a redirect took effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirected_to: Option<String>,
    /// Processing state.
    #[serde(default)]
    pub status: PrintJobStatus,
    /// The documents (only with `$expand=documents`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documents: Option<Vec<PrintDocument>>,
    /// The tasks triggered by this job (only with `$expand=tasks`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<PrintTask>>,
}

/// `printJobConfiguration`: every property, all optional; unset ones are omitted when sent, and
/// properties this model does not know are kept in [`PrintJobConfiguration::other`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrintJobConfiguration {
    /// Collate multiple copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collate: Option<bool>,
    /// Colour mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color_mode: Option<PrintColorMode>,
    /// Number of copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copies: Option<i32>,
    /// Resolution in dots per inch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpi: Option<i32>,
    /// One- or two-sided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplex_mode: Option<PrintDuplexMode>,
    /// Which edge is fed first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed_orientation: Option<PrinterFeedOrientation>,
    /// Finishing processes (staple, punch…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finishings: Option<Vec<PrintFinishing>>,
    /// Fit each PDF page to the sheet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit_pdf_to_page: Option<bool>,
    /// Input tray (one of the printer's `inputBins`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_bin: Option<String>,
    /// Margins (units undocumented).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<PrintMargin>,
    /// Media size name (ISO/ANSI, e.g. `A4`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_size: Option<String>,
    /// Media type (e.g. `stationery`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Page order when several pages share a sheet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multipage_layout: Option<PrintMultipageLayout>,
    /// Orientation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orientation: Option<PrintOrientation>,
    /// Output tray.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_bin: Option<String>,
    /// Pages to print.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_ranges: Option<Vec<IntegerRange>>,
    /// Pages per sheet (n-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages_per_sheet: Option<i32>,
    /// Print quality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<PrintQuality>,
    /// Scaling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<PrintScaling>,
    /// Any property this model does not name (one Graph added later): kept as Graph sent it, so a
    /// configuration read from a job and sent back in a PATCH or redirect loses nothing.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// `printMargin` (Int32 each; Graph does not document the unit).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrintMargin {
    /// Top margin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top: Option<i32>,
    /// Bottom margin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bottom: Option<i32>,
    /// Left margin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left: Option<i32>,
    /// Right margin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub right: Option<i32>,
}

/// `integerRange`: an inclusive range (page ranges, copies per job).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegerRange {
    /// First value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
    /// Last value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<i64>,
}

/// `printJobStatus`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrintJobStatus {
    /// The state.
    pub state: PrintJobProcessingState,
    /// Human-readable description of the state.
    #[serde(default)]
    pub description: String,
    /// Additional details (e.g. `releaseWait`).
    #[serde(default)]
    pub details: Vec<PrintJobStateDetail>,
    /// True once a printer acknowledged the job.
    #[serde(default)]
    pub is_acquired_by_printer: bool,
}

impl Default for PrintJobStatus {
    fn default() -> Self {
        Self {
            state: PrintJobProcessingState::Unknown,
            description: String::new(),
            details: Vec::new(),
            is_acquired_by_printer: false,
        }
    }
}

/// `userIdentity`: who created a job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    /// Entra object id of the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// User principal name: the owner key for held jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_principal_name: Option<String>,
    /// IP address the job came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
}

/// `printDocument`: metadata of a job's document; its `displayName` is the job's name in the UI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrintDocument {
    /// Document id.
    pub id: String,
    /// File name as submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// MIME type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Size in bytes.
    #[serde(default)]
    pub size: i64,
    /// When a printer downloaded it.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub downloaded_date_time: Option<OffsetDateTime>,
    /// When it was uploaded.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub uploaded_date_time: Option<OffsetDateTime>,
}

/// `printTask`: created in `processing` when a job hits our trigger; we must end it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrintTask {
    /// Task id.
    pub id: String,
    /// URL of the job that triggered the task (parse it with [`parse_parent_url`]).
    pub parent_url: String,
    /// The task's state.
    pub status: PrintTaskStatus,
    /// The definition (only when expanded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<Box<PrintTaskDefinition>>,
    /// The trigger (only when expanded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<PrintTaskTrigger>,
}

/// `printTaskStatus`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrintTaskStatus {
    /// The state.
    pub state: PrintTaskProcessingState,
    /// Human-readable description.
    #[serde(default)]
    pub description: String,
}

/// `printTaskDefinition`: the app's definition that tasks are created from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrintTaskDefinition {
    /// Definition id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub display_name: String,
    /// The app that created it (set by Graph).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<AppIdentity>,
    /// Its tasks (only when expanded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<PrintTask>>,
}

/// `appIdentity`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppIdentity {
    /// Application (client) id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Service principal object id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_principal_id: Option<String>,
    /// Service principal name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_principal_name: Option<String>,
}

/// `printTaskTrigger`: binds a printer's `jobStarted` event to a task definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrintTaskTrigger {
    /// Trigger id.
    pub id: String,
    /// The event (always `jobStarted` today).
    pub event: PrintEvent,
    /// The definition (only when expanded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<PrintTaskDefinition>,
}

/// `printer` (with the `printerBase` properties).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Printer {
    /// Printer id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub display_name: String,
    /// What the printer can do: validates release options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<PrinterCapabilities>,
    /// Defaults applied when a job leaves an option unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<PrinterDefaults>,
    /// Whether the printer accepts jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_accepting_jobs: Option<bool>,
    /// Where it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<PrinterLocation>,
    /// Manufacturer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    /// Model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Processing status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PrinterStatus>,
    /// False for a virtual printer.
    #[serde(default)]
    pub has_physical_device: bool,
    /// Whether it is shared.
    #[serde(default)]
    pub is_shared: bool,
    /// Last time the device was seen.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_seen_date_time: Option<OffsetDateTime>,
    /// When it was registered.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub registered_date_time: Option<OffsetDateTime>,
}

/// `printerStatus`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrinterStatus {
    /// The state.
    pub state: PrinterProcessingState,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `printerProcessingStateDetail` members, kept as strings (hundreds of members, display only).
    #[serde(default)]
    pub details: Vec<String>,
}

/// `printerCapabilities`: every property of the CSDL type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrinterCapabilities {
    /// Supported bottom margins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bottom_margins: Option<Vec<i32>>,
    /// Whether collation is supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collation: Option<bool>,
    /// Supported colour modes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color_modes: Option<Vec<PrintColorMode>>,
    /// Supported content types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_types: Option<Vec<String>>,
    /// Allowed copies per job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copies_per_job: Option<IntegerRange>,
    /// Supported resolutions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpis: Option<Vec<i32>>,
    /// Supported duplex modes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplex_modes: Option<Vec<PrintDuplexMode>>,
    /// Supported feed orientations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed_orientations: Option<Vec<PrinterFeedOrientation>>,
    /// Supported finishings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finishings: Option<Vec<PrintFinishing>>,
    /// Input trays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_bins: Option<Vec<String>>,
    /// Whether colour printing is supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_color_printing_supported: Option<bool>,
    /// Whether page ranges are supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_page_range_supported: Option<bool>,
    /// Supported left margins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_margins: Option<Vec<i32>>,
    /// Media colours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_colors: Option<Vec<String>>,
    /// Media sizes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_sizes: Option<Vec<String>>,
    /// Media types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_types: Option<Vec<String>>,
    /// Multipage layouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multipage_layouts: Option<Vec<PrintMultipageLayout>>,
    /// Orientations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orientations: Option<Vec<PrintOrientation>>,
    /// Output trays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_bins: Option<Vec<String>>,
    /// Pages-per-sheet values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages_per_sheet: Option<Vec<i32>>,
    /// Qualities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualities: Option<Vec<PrintQuality>>,
    /// Supported right margins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub right_margins: Option<Vec<i32>>,
    /// Scalings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scalings: Option<Vec<PrintScaling>>,
    /// Whether fit-PDF-to-page is supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supports_fit_pdf_to_page: Option<bool>,
    /// Supported top margins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_margins: Option<Vec<i32>>,
}

/// `printerDefaults`: every property of the CSDL type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrinterDefaults {
    /// Default colour mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color_mode: Option<PrintColorMode>,
    /// Default content type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Default copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copies_per_job: Option<i32>,
    /// Default resolution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpi: Option<i32>,
    /// Default duplex mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplex_mode: Option<PrintDuplexMode>,
    /// Default finishings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finishings: Option<Vec<PrintFinishing>>,
    /// Default fit-PDF-to-page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit_pdf_to_page: Option<bool>,
    /// Default input tray.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_bin: Option<String>,
    /// Default media colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_color: Option<String>,
    /// Default media size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_size: Option<String>,
    /// Default media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Default multipage layout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multipage_layout: Option<PrintMultipageLayout>,
    /// Default orientation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orientation: Option<PrintOrientation>,
    /// Default output tray.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_bin: Option<String>,
    /// Default pages per sheet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages_per_sheet: Option<i32>,
    /// Default quality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<PrintQuality>,
    /// Default scaling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<PrintScaling>,
}

/// `printerLocation`: every property of the CSDL type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrinterLocation {
    /// Altitude in metres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub altitude_in_meters: Option<i32>,
    /// Building.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub building: Option<String>,
    /// City.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Country or region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_or_region: Option<String>,
    /// Floor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<String>,
    /// Floor description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_description: Option<String>,
    /// Latitude.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    /// Longitude.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
    /// Organisation hierarchy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<Vec<String>>,
    /// Postal code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// Room description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_description: Option<String>,
    /// Room name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_name: Option<String>,
    /// Site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// State or province.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_or_province: Option<String>,
    /// Street address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    /// Subdivisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdivision: Option<Vec<String>>,
    /// Sub-units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subunit: Option<Vec<String>>,
}

/// `user`: the properties the card lookup needs (`$select`ed, since `employeeId` is not returned by
/// default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Entra object id.
    pub id: String,
    /// User principal name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_principal_name: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Employee id (the card number in many organisations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_id: Option<String>,
}

/// `subscription` as Graph returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// Subscription id.
    pub id: String,
    /// Resource path, e.g. `print/taskDefinitions/{id}/tasks`.
    #[serde(default)]
    pub resource: String,
    /// Comma-separated change types (`created`, `updated`, `deleted`).
    #[serde(default)]
    pub change_type: String,
    /// Where notifications go.
    #[serde(default)]
    pub notification_url: String,
    /// Where lifecycle notifications go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_notification_url: Option<String>,
    /// When it expires (print: at most 4,230 minutes ahead).
    #[serde(with = "time::serde::rfc3339")]
    pub expiration_date_time: OffsetDateTime,
    /// The `clientState` secret echoed in each notification. Graph may omit it in responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_state: Option<String>,
    /// The creating application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_id: Option<String>,
    /// The creator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator_id: Option<String>,
    /// Whether notifications carry resource data (not available for print).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_resource_data: Option<bool>,
    /// Minimum TLS version of the notification endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_supported_tls_version: Option<String>,
    /// OData query options filtering notifications (Universal Print only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_query_options: Option<String>,
}

/// The body of `POST /subscriptions`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewSubscription {
    /// Comma-separated change types; `created` for new print tasks.
    pub change_type: String,
    /// HTTPS URL receiving notifications.
    pub notification_url: String,
    /// HTTPS URL receiving lifecycle notifications (only settable at creation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle_notification_url: Option<String>,
    /// Resource path, e.g. `print/taskDefinitions/{id}/tasks`.
    pub resource: String,
    /// Expiry (print: at most 4,230 minutes ahead).
    #[serde(with = "time::serde::rfc3339")]
    pub expiration_date_time: OffsetDateTime,
    /// Secret echoed in every notification (≤ 128 characters); never logged.
    #[serde(serialize_with = "expose_secret")]
    pub client_state: secrecy::SecretString,
}

fn expose_secret<S: serde::Serializer>(
    secret: &secrecy::SecretString,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use secrecy::ExposeSecret;
    serializer.serialize_str(secret.expose_secret())
}

/// The body Graph POSTs to a notification URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeNotificationCollection {
    /// The notifications (possibly for several subscriptions).
    #[serde(default)]
    pub value: Vec<ChangeNotification>,
    /// Only for rich notifications (not used by print).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_tokens: Option<Vec<String>>,
}

/// One `changeNotification` (a change, or a lifecycle event when `lifecycle_event` is set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeNotification {
    /// Notification id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The subscription it belongs to.
    pub subscription_id: String,
    /// The subscription's expiry.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub subscription_expiration_date_time: Option<OffsetDateTime>,
    /// The `clientState` to verify (constant-time) before trusting the notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_state: Option<String>,
    /// What changed (absent on lifecycle notifications).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_type: Option<ChangeType>,
    /// Relative resource path, e.g. `print/taskDefinitions/{d}/tasks/{t}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Resource data (an open type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_data: Option<ResourceData>,
    /// Tenant id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Set on lifecycle notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_event: Option<LifecycleEvent>,
    /// Encrypted resource data (rich notifications only; not used by print).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_content: Option<serde_json::Value>,
}

/// `resourceData`: an open type; print notifications carry the task id and, per Microsoft's sample,
/// the job URL in `parentUrl` (not guaranteed: fall back to GET task).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceData {
    /// The resource id (the task id for print).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `@odata.type`, e.g. `#Microsoft.Graph.PrintTask`.
    #[serde(
        rename = "@odata.type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub odata_type: Option<String>,
    /// `@odata.id`.
    #[serde(rename = "@odata.id", default, skip_serializing_if = "Option::is_none")]
    pub odata_id: Option<String>,
    /// `@odata.etag`.
    #[serde(
        rename = "@odata.etag",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub odata_etag: Option<String>,
    /// The job URL of a print task.
    #[serde(rename = "parentUrl", default, skip_serializing_if = "Option::is_none")]
    pub parent_url: Option<String>,
    /// Any other property.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// Which navigation properties to `$expand` on a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expand {
    /// `tasks`: the job's print tasks.
    Tasks,
    /// `documents`: the job's documents (their name is the job's name).
    Documents,
}

impl Expand {
    /// The name in `$expand`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tasks => "tasks",
            Self::Documents => "documents",
        }
    }
}

/// Where a job lives, parsed from a task's `parentUrl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRef {
    /// The printer id.
    pub printer_id: String,
    /// The job id.
    pub job_id: String,
}

/// Parses a print task's `parentUrl` (`…/print/printers/{printerId}/jobs/{jobId}`) into the printer and
/// job ids.
///
/// Only the path is read: the host differs per cloud (and is undocumented for US Government), and a
/// relative URL is accepted too. Share URLs (`/print/shares/{id}/jobs/{id}`) are refused, because a
/// task trigger lives on a printer and the job operations the daemon needs take a printer id.
pub fn parse_parent_url(parent_url: &str) -> Result<JobRef, GraphError> {
    let invalid = |why: &str| GraphError::InvalidParentUrl {
        url: parent_url.to_owned(),
        problem: why.to_owned(),
    };
    let path = match url::Url::parse(parent_url) {
        Ok(url) => url.path().to_owned(),
        Err(url::ParseError::RelativeUrlWithoutBase) => parent_url
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .to_owned(),
        Err(error) => return Err(invalid(&format!("not a URL ({error})"))),
    };
    let segments: Vec<&str> = path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .collect();
    match segments.as_slice() {
        [.., "print", "printers", printer, "jobs", job] => Ok(JobRef {
            printer_id: (*printer).to_owned(),
            job_id: (*job).to_owned(),
        }),
        [.., "print", "shares", _, "jobs", _] => Err(invalid(
            "it names a printer share, but held jobs are expected on a printer (…/print/printers/{id}/jobs/{id}); \
             put the task trigger on the printer, not the share",
        )),
        _ => Err(invalid(
            "expected a path ending in /print/printers/{printerId}/jobs/{jobId}",
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parse_parent_url_reads_a_global_job_url() {
        let job = parse_parent_url(
            "https://graph.microsoft.com/v1.0/print/printers/c05f3726-0d4b-4aa1-8fe9-2eb981bb26fb/jobs/5182",
        )
        .unwrap();
        assert_eq!(job.printer_id, "c05f3726-0d4b-4aa1-8fe9-2eb981bb26fb");
        assert_eq!(job.job_id, "5182");
    }

    #[test]
    fn parse_parent_url_reads_a_usgov_job_url_and_ignores_the_host() {
        let job =
            parse_parent_url("https://graph.microsoft.us/v1.0/print/printers/p1/jobs/7/").unwrap();
        assert_eq!(
            job,
            JobRef {
                printer_id: "p1".into(),
                job_id: "7".into()
            }
        );
        let relative = parse_parent_url("/print/printers/p1/jobs/7").unwrap();
        assert_eq!(relative, job);
    }

    #[test]
    fn parse_parent_url_refuses_garbage_and_shares_with_a_reason() {
        let garbage =
            parse_parent_url("https://graph.microsoft.com/v1.0/print/printers/p1").unwrap_err();
        assert!(
            garbage
                .to_string()
                .contains("/print/printers/{printerId}/jobs/{jobId}"),
            "{garbage}"
        );
        let share =
            parse_parent_url("https://graph.microsoft.com/v1.0/print/shares/s/jobs/1").unwrap_err();
        assert!(share.to_string().contains("share"), "{share}");
        assert!(parse_parent_url("http://[::1").is_err());
    }

    #[test]
    fn the_update_printjob_response_from_the_docs_deserializes() {
        // Verbatim from printjob-update.md @322a29c7 (graph-docs/api--pull-printing-endpoints.md).
        let body = r#"{
          "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#print/printers('d5ef6ec4-07ca-4212-baf9-d45be126bfbb')/jobs/$entity",
          "id": "44353",
          "createdDateTime": "2020-06-26T04:20:06.5715544Z",
          "createdBy": {"id": "", "displayName": "", "userPrincipalName": ""},
          "status": {"state": "paused", "description": "The job is not a candidate for processing yet."},
          "configuration": {
            "feedOrientation": "longEdgeFirst",
            "pageRanges": [{"start": 1, "end": 1}],
            "quality": "medium", "dpi": 600, "orientation": "landscape", "copies": 1,
            "duplexMode": "oneSided", "colorMode": "blackAndWhite",
            "inputBin": "by-pass-tray", "outputBin": "output-tray", "mediaSize": "A4",
            "margin": {"top": 0, "bottom": 0, "left": 0, "right": 0},
            "mediaType": "stationery", "finishings": null, "pagesPerSheet": 1,
            "multipageLayout": "clockwiseFromBottomLeft", "collate": false,
            "scaling": "shrinkToFit", "fitPdfToPage": false
          }
        }"#;
        let job: PrintJob = serde_json::from_str(body).unwrap();
        assert_eq!(job.id, "44353");
        assert_eq!(job.status.state, PrintJobProcessingState::Paused);
        assert_eq!(
            job.configuration.duplex_mode,
            Some(PrintDuplexMode::OneSided)
        );
        assert_eq!(
            job.configuration.page_ranges,
            Some(vec![IntegerRange {
                start: Some(1),
                end: Some(1)
            }])
        );
        assert_eq!(
            job.configuration.multipage_layout,
            Some(PrintMultipageLayout::ClockwiseFromBottomLeft)
        );
        assert_eq!(job.configuration.finishings, None);
    }

    #[test]
    fn the_get_printjob_with_tasks_response_from_the_docs_deserializes() {
        // Verbatim from printjob-get.md @073a3963 Example 2.
        let body = r#"{
          "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#print/printers('c05f3726-0d4b-4aa1-8fe9-2eb981bb26fb')/jobs/$entity",
          "id": "5182",
          "createdDateTime": "2020-02-04T00:00:00.0000000Z",
          "createdBy": {},
          "configuration": {},
          "status": {"state": "completed", "description": "The print job has completed successfully and no further processing will take place.", "details": [], "isAcquiredByPrinter": true},
          "redirectedTo": null,
          "redirectedFrom": null,
          "isFetchable": false,
          "tasks": [{
            "id": "d036638b-1272-4bba-9227-732463823ed3",
            "parentUrl": "https://graph.microsoft.com/v1.0/print/printers/c05f3726-0d4b-4aa1-8fe9-2eb981bb26fb/jobs/5182",
            "status": {"state": "processing", "description": "The task is being processed."}
          }]
        }"#;
        let job: PrintJob = serde_json::from_str(body).unwrap();
        let tasks = job.tasks.unwrap();
        assert_eq!(tasks[0].status.state, PrintTaskProcessingState::Processing);
        assert!(job.status.is_acquired_by_printer);
        assert_eq!(
            job.created_date_time,
            Some(time::macros::datetime!(2020-02-04 00:00 UTC))
        );
    }

    #[test]
    fn an_unknown_colour_mode_in_a_job_configuration_round_trips() {
        let config: PrintJobConfiguration =
            serde_json::from_str(r#"{"colorMode":"sepia"}"#).unwrap();
        assert_eq!(
            config.color_mode,
            Some(PrintColorMode::Other("sepia".into()))
        );
        assert_eq!(
            serde_json::to_string(&config).unwrap(),
            r#"{"colorMode":"sepia"}"#
        );
    }

    #[test]
    fn an_unknown_configuration_property_round_trips_as_graph_sent_it() {
        let sent =
            serde_json::json!({"copies": 2, "binding": {"edge": "left"}, "tonerSaver": true});
        let config: PrintJobConfiguration = serde_json::from_value(sent.clone()).unwrap();
        assert_eq!(config.copies, Some(2));
        assert_eq!(
            config.other.get("tonerSaver"),
            Some(&serde_json::json!(true))
        );
        assert_eq!(serde_json::to_value(&config).unwrap(), sent);
    }

    #[test]
    fn unset_configuration_fields_are_omitted_when_sent() {
        let config = PrintJobConfiguration {
            copies: Some(2),
            duplex_mode: Some(PrintDuplexMode::FlipOnLongEdge),
            ..PrintJobConfiguration::default()
        };
        assert_eq!(
            serde_json::to_value(&config).unwrap(),
            serde_json::json!({"copies": 2, "duplexMode": "flipOnLongEdge"})
        );
    }

    #[test]
    fn a_print_task_notification_with_parent_url_and_a_lifecycle_event_deserialize() {
        let body = r##"{"value":[
          {"subscriptionId":"s1","clientState":"cs","changeType":"created","tenantId":"t",
           "resource":"print/taskDefinitions/d/tasks/t1",
           "subscriptionExpirationDateTime":"2026-01-01T00:00:00Z",
           "resourceData":{"@odata.type":"#Microsoft.Graph.PrintTask","@odata.id":"print/taskDefinitions/d/tasks/t1","id":"t1",
             "parentUrl":"https://graph.microsoft.com/v1.0/print/printers/p/jobs/j","extra":1}},
          {"subscriptionId":"s1","clientState":"cs","lifecycleEvent":"reauthorizationRequired"}]}"##;
        let batch: ChangeNotificationCollection = serde_json::from_str(body).unwrap();
        let data = batch.value[0].resource_data.as_ref().unwrap();
        assert_eq!(data.id.as_deref(), Some("t1"));
        assert_eq!(
            data.odata_type.as_deref(),
            Some("#Microsoft.Graph.PrintTask")
        );
        assert_eq!(data.other.get("extra"), Some(&serde_json::json!(1)));
        assert_eq!(batch.value[0].change_type, Some(ChangeType::Created));
        assert_eq!(
            batch.value[1].lifecycle_event,
            Some(LifecycleEvent::ReauthorizationRequired)
        );
    }
}
