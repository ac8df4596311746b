//! Release from the phone, end to end in headless Chromium: the kiosk (1024×768) shows its QR code;
//! the code is read back from the kiosk's screenshot with a QR decoder, as a phone's camera would;
//! a phone-sized browser (390×844, mobile, touch) opens it, signs in at the emulator's Entra ID
//! page, sees only that person's jobs, changes the copies of one and releases it; the emulator shows
//! the job printed on the station's printer exactly once. Opening the same code again is refused
//! with a page saying so. Screenshots of the kiosk and the phone go to
//! `target/kiosk-screenshots/phone/` (the README's come from them).
#![allow(clippy::unwrap_used)]

use crate::kiosk_browser::{Driver, Screen, browser_tools, screenshot_dir};
use crate::station_support::*;

use serde_json::json;

const KIOSK: Screen = Screen {
    width: 1024,
    height: 768,
    language: "en-GB",
    mobile: false,
};
const PHONE: Screen = Screen {
    width: 390,
    height: 844,
    language: "en-GB",
    mobile: true,
};

/// The text of the one QR code in a PNG screenshot.
fn read_qr(png_bytes: &[u8]) -> String {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    let channels = frame.color_type.samples();
    let (width, height) = (frame.width as usize, frame.height as usize);
    let luma = |x: usize, y: usize| -> u8 {
        let at = (y * width + x) * channels;
        if channels >= 3 {
            let (r, g, b) = (
                u32::from(pixels[at]),
                u32::from(pixels[at + 1]),
                u32::from(pixels[at + 2]),
            );
            u8::try_from((r * 299 + g * 587 + b * 114) / 1000).unwrap_or(255)
        } else {
            pixels[at]
        }
    };
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, luma);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code on the kiosk's screen");
    let (_, text) = grids[0].decode().expect("the QR code decodes");
    text
}

async fn save(driver: &Driver, name: &str) {
    let dir = screenshot_dir().join("phone");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{name}.png")),
        driver.screenshot_png().await,
    )
    .unwrap();
}

#[tokio::test]
async fn a_phone_scans_the_kiosk_code_signs_in_with_entra_id_and_releases_its_own_job_once() {
    let Some((chromium, chromedriver, axe)) = browser_tools() else {
        return;
    };
    let bed = Bed::start_phone_with_pull("follow-me").await;
    for (owner, name) in [(ADA, "ada-pull.pdf"), (BOB, "bob-pull.pdf")] {
        bed.emulator
            .control()
            .submit_pull_job(pullprintd::emulator::NewJob {
                printer_id: "follow-me".to_owned(),
                user_principal_name: owner.to_owned(),
                user_display_name: None,
                document_name: Some(name.to_owned()),
                configuration: Some(json!({"copies": 1})),
            })
            .unwrap();
    }
    let (report, report_print) = bed
        .held_job(
            ADA,
            "quarterly-report.pdf",
            json!({"copies": 1, "duplexMode": "oneSided", "colorMode": "color"}),
        )
        .await;
    let (_, _) = bed.held_job(ADA, "draft.pdf", json!({"copies": 1})).await;
    let (_, _) = bed
        .held_job(BOB, "bobs-secret-plan.pdf", json!({"copies": 1}))
        .await;

    // The kiosk: set up with the queue station's key; its sign-in screen shows the QR code.
    let kiosk = Driver::start(&chromium, &chromedriver, KIOSK).await;
    kiosk.goto(&bed.station_url("/")).await;
    kiosk.type_into("#station-key", QUEUE_KEY).await;
    kiosk.click("#save-key").await;
    kiosk.element("#qr svg").await;
    kiosk
        .script(
            "document.getElementById('qr').scrollIntoView({block: 'center'}); return null;",
            json!([]),
        )
        .await;
    save(&kiosk, "kiosk-qr").await;
    kiosk.check(&axe, "sign-in-with-qr-code").await;
    let url = read_qr(&kiosk.screenshot_png().await);
    let shown = kiosk
        .script(
            "return document.getElementById('qr').dataset.url;",
            json!([]),
        )
        .await;
    assert_eq!(
        json!(url),
        shown,
        "the QR code says the page's code address"
    );
    assert!(
        url.starts_with(&bed.station_url("/phone/start?code=")),
        "{url}"
    );

    // The phone: opens the code, signs in as Ada at the emulator's Entra ID page.
    let phone = Driver::start(&chromium, &chromedriver, PHONE).await;
    phone.goto(&url).await;
    phone.element("[data-upn=\"ada@contoso.com\"]").await;
    save(&phone, "entra-sign-in").await;
    phone.click("[data-upn=\"ada@contoso.com\"]").await;
    phone
        .wait_until("document.querySelectorAll('#job-list li.job').length === 3")
        .await;
    let names = phone
        .script(
            "return [...document.querySelectorAll('#job-list .job-name')].map((e) => e.textContent).sort();",
            json!([]),
        )
        .await;
    assert_eq!(
        names,
        json!(["ada-pull.pdf", "draft.pdf", "quarterly-report.pdf"]),
        "only Ada's jobs: held, and waiting on the pull printer"
    );
    // The pull printer's job prints as sent: no options to change, nothing to delete here.
    let pull = phone
        .script(
            "const item = [...document.querySelectorAll('#job-list li.job')].find((e) => e.querySelector('.job-name').textContent === 'ada-pull.pdf');\
             return [item.querySelector('.options-toggle').hidden, item.querySelector('.delete').hidden, item.querySelector('.job-settings').textContent];",
            json!([]),
        )
        .await;
    assert_eq!(pull[0], json!(true), "{pull}");
    assert_eq!(pull[1], json!(true), "{pull}");
    assert!(
        pull[2].as_str().unwrap().contains("prints as sent"),
        "{pull}"
    );
    let address = phone.script("return location.href;", json!([])).await;
    assert!(
        !address.as_str().unwrap().contains("session="),
        "the session left the address bar: {address}"
    );
    let width = phone
        .script("return document.documentElement.scrollWidth;", json!([]))
        .await;
    let wide = phone
        .script(
            "return [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > 391).map((e) => (e.id || e.className || e.tagName) + ':' + Math.round(e.getBoundingClientRect().right));",
            json!([]),
        )
        .await;
    assert!(
        width.as_u64().unwrap() <= u64::from(PHONE.width),
        "nothing wider than the phone: {width}; too wide: {wide}"
    );
    save(&phone, "phone-jobs").await;
    // The phone's screen passes the kiosk's own checks: axe-core, and no target under 48 px.
    phone.check(&axe, "phone-jobs").await;

    // Two copies of the report, released at the queue station's printer.
    let item = format!("#job-list li.job[data-id=\"{report}\"]");
    phone.click(&format!("{item} .options-toggle")).await;
    phone.click(&format!("{item} .more")).await;
    save(&phone, "phone-options").await;
    phone.click(&format!("{item} .release")).await;
    phone
        .wait_until(&format!(
            "document.querySelector('{item}').dataset.state === 'printed'"
        ))
        .await;
    save(&phone, "phone-printed").await;
    let printed = bed.emulator.control().printed(&bed.queue);
    let this: Vec<_> = printed
        .iter()
        .filter(|p| p.job_id == report_print)
        .collect();
    assert_eq!(this.len(), 1, "printed exactly once: {printed:?}");
    assert_eq!(this[0].configuration["copies"], json!(2), "{:?}", this[0]);

    // The same code again (a second phone, or a photo of the screen): refused, nothing signed in.
    let again = Driver::start(&chromium, &chromedriver, PHONE).await;
    again.goto(&url).await;
    let said = again.text("#phone-message").await;
    assert!(said.contains("already used"), "{said}");
    assert!(
        bed.emulator.control().printed(&bed.queue).len() == printed.len(),
        "nothing else printed"
    );
    again.quit().await;
    phone.quit().await;
    kiosk.quit().await;
    let report = crate::graph_schema::GraphSchema::load().check_log(&bed.graph_request_log());
    assert!(
        report.total > 0 && report.all_valid(),
        "recorded Graph requests are not all valid against Microsoft's schema:\n{report}"
    );
}
