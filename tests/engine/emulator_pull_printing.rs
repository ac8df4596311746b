//! The emulator's native pull printing (Graph v1.0): pull printers, the jobs waiting on them, and
//! `POST /print/printers/{id}/jobs/release` with a person's delegated token, driven over HTTP.
#![allow(clippy::unwrap_used)]

use pullprintd::emulator::{
    AppRegistration, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, EmulatorOptions, NewJob, NewPrinter,
    NewPullPrinter,
};
use serde_json::{Value, json};

use super::emulator_sign_in::{ADA, Bed, GRACE};

/// A world with two member printers, one printer outside the pull printer, and a pull printer.
struct World {
    bed: Bed,
    pull: String,
    lobby: String,
    floor2: String,
    basement: String,
}

impl World {
    async fn start(options: EmulatorOptions) -> Self {
        let bed = Bed::start(options).await;
        let control = bed.emulator.control();
        let printer = |name: &str| {
            control
                .create_printer(NewPrinter {
                    display_name: name.into(),
                    ..NewPrinter::default()
                })
                .unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let (lobby, floor2, basement) = (printer("Lobby"), printer("Floor 2"), printer("Basement"));
        let pull = control
            .create_pull_printer(NewPullPrinter {
                display_name: "Follow me".into(),
                members: vec![lobby.clone(), floor2.clone()],
                ..NewPullPrinter::default()
            })
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        Self {
            bed,
            pull,
            lobby,
            floor2,
            basement,
        }
    }

    async fn default() -> Self {
        Self::start(EmulatorOptions::default()).await
    }

    fn waiting_job(&self, upn: &str) -> String {
        self.bed
            .emulator
            .control()
            .submit_pull_job(NewJob {
                printer_id: self.pull.clone(),
                user_principal_name: upn.into(),
                document_name: Some("boarding-pass.pdf".into()),
                ..NewJob::default()
            })
            .unwrap()
    }

    /// A person's delegated access token through the sign-in page.
    async fn person_token(&self, upn: &str, scope: &str) -> String {
        self.bed.sign_in(upn, scope).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn app_token(&self) -> String {
        let scope = format!(
            "{}/.default",
            self.bed.emulator.url().as_str().trim_end_matches('/')
        );
        let r: Value = self
            .bed
            .http
            .post(self.bed.emulator.token_url())
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", DEMO_CLIENT_ID),
                ("client_secret", DEMO_CLIENT_SECRET),
                ("scope", scope.as_str()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["access_token"].as_str().unwrap().to_owned()
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .bed
            .http
            .request(method, format!("{}{path}", self.bed.emulator.graph_url()))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, token, None).await
    }

    async fn release(&self, printer: &str, job: &str, token: &str) -> (u16, Value) {
        self.call(
            reqwest::Method::POST,
            &format!("/print/printers/{printer}/jobs/release"),
            token,
            Some(json!({"jobId": job})),
        )
        .await
    }
}

const PERSON: &str = "openid profile PrintJob.ReadWriteBasic";

#[tokio::test]
async fn a_delegated_release_prints_the_job_once_at_a_member_printer() {
    let world = World::default().await;
    let job = world.waiting_job(ADA);
    let control = world.bed.emulator.control();
    let view = control.pull_job(&job).unwrap();
    assert!(view.waiting);
    assert_eq!(view.state, "paused");
    let token = world.person_token(ADA, PERSON).await;
    let (status, listed) = world
        .get(
            &format!("/print/pullPrintPrinters/{}/jobs/{job}", world.pull),
            &token,
        )
        .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["status"]["state"], "paused");
    assert_eq!(listed["status"]["details"], json!(["releaseWait"]));
    assert_eq!(listed["createdBy"]["userPrincipalName"], ADA);

    let (status, released) = world.release(&world.floor2, &job, &token).await;
    assert_eq!(status, 200, "{released}");
    assert_eq!(released["id"], job.as_str());
    assert_eq!(released["status"]["state"], "completed");
    let printed = control.printed(&world.floor2);
    assert_eq!(printed.len(), 1);
    assert_eq!(printed[0].job_id, job);
    assert_eq!(printed[0].user_principal_name, ADA);
    assert!(control.printed(&world.lobby).is_empty());
    let view = control.pull_job(&job).unwrap();
    assert!(!view.waiting);
    assert_eq!(view.released_on.as_deref(), Some(world.floor2.as_str()));
    assert_eq!(control.refused_app_only_releases(), 0);
}

#[tokio::test]
async fn an_app_only_release_is_refused_with_403_and_counted() {
    let world = World::default().await;
    let job = world.waiting_job(ADA);
    let token = world.app_token().await;
    let (status, body) = world.release(&world.lobby, &job, &token).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "accessDenied");
    let control = world.bed.emulator.control();
    assert_eq!(control.refused_app_only_releases(), 1);
    assert!(control.pull_job(&job).unwrap().waiting);
    assert!(control.printed(&world.lobby).is_empty());
    let refusals: Value = world
        .bed
        .http
        .get(format!(
            "{}_emulator/release-refusals",
            world.bed.emulator.url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(refusals, json!({"appOnly": 1}));
}

#[tokio::test]
async fn a_printer_that_is_not_a_member_is_refused() {
    let world = World::default().await;
    let job = world.waiting_job(ADA);
    let token = world.person_token(ADA, PERSON).await;
    let (status, body) = world.release(&world.basement, &job, &token).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalidRequest");
    let (status, _) = world.release("no-such-printer", &job, &token).await;
    assert_eq!(status, 404);
    let control = world.bed.emulator.control();
    assert!(control.printed(&world.basement).is_empty());
    assert!(control.pull_job(&job).unwrap().waiting);
}

#[tokio::test]
async fn someone_elses_job_is_not_found_unless_the_scope_is_an_all_one() {
    let world = World::default().await;
    let job = world.waiting_job(GRACE);
    let token = world.person_token(ADA, PERSON).await;
    let (status, body) = world.release(&world.lobby, &job, &token).await;
    assert_eq!(status, 404, "{body}");
    assert!(world.bed.emulator.control().pull_job(&job).unwrap().waiting);

    let app = AppRegistration {
        delegated_permissions: vec!["PrintJob.ReadWriteBasic.All".into()],
        ..AppRegistration::demo()
    };
    let world = World::start(EmulatorOptions {
        apps: vec![app],
        ..EmulatorOptions::default()
    })
    .await;
    let job = world.waiting_job(GRACE);
    let token = world
        .person_token(ADA, "openid PrintJob.ReadWriteBasic.All")
        .await;
    let (status, body) = world.release(&world.lobby, &job, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(world.bed.emulator.control().printed(&world.lobby).len(), 1);
}

#[tokio::test]
async fn a_second_release_is_a_conflict_and_prints_nothing_more() {
    let world = World::default().await;
    let job = world.waiting_job(ADA);
    let token = world.person_token(ADA, PERSON).await;
    assert_eq!(world.release(&world.lobby, &job, &token).await.0, 200);
    let (status, body) = world.release(&world.lobby, &job, &token).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "conflict");
    let (status, _) = world.release(&world.floor2, &job, &token).await;
    assert_eq!(status, 409);
    let control = world.bed.emulator.control();
    assert_eq!(control.printed(&world.lobby).len(), 1);
    assert!(control.printed(&world.floor2).is_empty());
}

#[tokio::test]
async fn a_device_code_token_of_the_demo_app_carries_print_job_read_write_basic_and_releases() {
    let world = World::default().await;
    let job = world.waiting_job(GRACE);
    let base = world.bed.emulator.url();
    let root = base.as_str().trim_end_matches('/');
    let code: Value = world
        .bed
        .http
        .post(format!(
            "{root}/{}/oauth2/v2.0/devicecode",
            world.bed.emulator.tenant_id()
        ))
        .form(&[
            ("client_id", DEMO_CLIENT_ID),
            ("scope", &format!("{root}/.default")),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    world
        .bed
        .emulator
        .control()
        .approve_device_code(code["user_code"].as_str().unwrap(), GRACE, false)
        .unwrap();
    let tokens: Value = world
        .bed
        .http
        .post(world.bed.emulator.token_url())
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", DEMO_CLIENT_ID),
            ("device_code", code["device_code"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        tokens["scope"]
            .as_str()
            .unwrap()
            .split(' ')
            .any(|s| s == "PrintJob.ReadWriteBasic")
    );
    let token = tokens["access_token"].as_str().unwrap();
    assert_eq!(world.release(&world.lobby, &job, token).await.0, 200);
}

#[tokio::test]
async fn pull_printers_and_their_members_are_read_with_pull_print_printer_read_all() {
    let world = World::default().await;
    let token = world.app_token().await;
    let (status, list) = world.get("/print/pullPrintPrinters", &token).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["value"][0]["id"], world.pull.as_str());
    assert_eq!(list["value"][0]["includeAllPrinters"], false);
    assert_eq!(
        list["value"][0]["@odata.type"],
        "#microsoft.graph.pullPrintPrinter"
    );
    let (status, one) = world
        .get(&format!("/print/pullPrintPrinters/{}", world.pull), &token)
        .await;
    assert_eq!(status, 200);
    assert_eq!(one["displayName"], "Follow me");
    let (status, members) = world
        .get(
            &format!("/print/pullPrintPrinters/{}/printers", world.pull),
            &token,
        )
        .await;
    assert_eq!(status, 200);
    let mut ids: Vec<&str> = members["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut expected = vec![world.lobby.as_str(), world.floor2.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    let (status, _) = world.get("/print/pullPrintPrinters/nope", &token).await;
    assert_eq!(status, 404);
    let (status, _) = world
        .get("/print/pullPrintPrinters?$orderby=displayName", &token)
        .await;
    assert_eq!(
        status, 400,
        "a documented option the emulator does not emulate is refused"
    );

    // Without the permission, and as a person who is no Printer Administrator: refused.
    let app = AppRegistration {
        application_permissions: vec!["Printer.Read.All".into(), "PrintJob.Read.All".into()],
        ..AppRegistration::demo()
    };
    let limited = World::start(EmulatorOptions {
        apps: vec![app],
        ..EmulatorOptions::default()
    })
    .await;
    let (status, body) = limited
        .get("/print/pullPrintPrinters", &limited.app_token().await)
        .await;
    assert_eq!(status, 403);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("PullPrintPrinter.Read.All")
    );
    let person = world.person_token(ADA, PERSON).await;
    assert_eq!(world.get("/print/pullPrintPrinters", &person).await.0, 403);
}

#[tokio::test]
async fn a_person_lists_only_their_own_waiting_jobs_and_the_app_lists_all() {
    let world = World::default().await;
    let ada_job = world.waiting_job(ADA);
    let grace_job = world.waiting_job(GRACE);
    let path = format!("/print/pullPrintPrinters/{}/jobs", world.pull);
    let ids = |v: &Value| -> Vec<String> {
        v["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let person = world.person_token(ADA, PERSON).await;
    let (status, mine) = world.get(&path, &person).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(ids(&mine), vec![ada_job.clone()]);
    let (status, _) = world.get(&format!("{path}/{grace_job}"), &person).await;
    assert_eq!(status, 404, "another person's job looks unknown");
    let (status, all) = world.get(&path, &world.app_token().await).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(ids(&all), vec![ada_job, grace_job]);
    // A waiting job is not a job of any member printer.
    let (_, lobby_jobs) = world
        .get(
            &format!("/print/printers/{}/jobs", world.lobby),
            &world.app_token().await,
        )
        .await;
    assert_eq!(lobby_jobs["value"], json!([]));
}

#[tokio::test]
async fn with_include_all_printers_every_printer_of_the_tenant_is_a_member() {
    let world = World::default().await;
    let control = world.bed.emulator.control();
    let everywhere = control
        .create_pull_printer(NewPullPrinter {
            display_name: "Anywhere".into(),
            include_all_printers: true,
            ..NewPullPrinter::default()
        })
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let job = control
        .submit_pull_job(NewJob {
            printer_id: everywhere,
            user_principal_name: ADA.into(),
            ..NewJob::default()
        })
        .unwrap();
    let token = world.person_token(ADA, PERSON).await;
    assert_eq!(world.release(&world.basement, &job, &token).await.0, 200);
    assert_eq!(control.printed(&world.basement).len(), 1);
}

#[tokio::test]
async fn pull_print_calls_are_recorded_like_every_graph_call() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("requests.jsonl");
    let world = World::start(EmulatorOptions {
        record_path: Some(path.clone()),
        ..EmulatorOptions::default()
    })
    .await;
    let job = world.waiting_job(ADA);
    let person = world.person_token(ADA, PERSON).await;
    world
        .get(
            &format!("/print/pullPrintPrinters/{}/jobs", world.pull),
            &person,
        )
        .await;
    world.release(&world.lobby, &job, &person).await;
    let lines: Vec<Value> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        2,
        "sign-in and tokens are not Graph calls: {lines:?}"
    );
    assert_eq!(lines[0]["method"], "GET");
    assert!(lines[0]["url"].as_str().unwrap().ends_with(&format!(
        "/v1.0/print/pullPrintPrinters/{}/jobs",
        world.pull
    )));
    assert_eq!(lines[1]["method"], "POST");
    assert!(lines[1]["url"].as_str().unwrap().ends_with(&format!(
        "/v1.0/print/printers/{}/jobs/release",
        world.lobby
    )));
    assert_eq!(lines[1]["body"], json!({"jobId": job}));
    let control = world.bed.emulator.control();
    assert_eq!(
        control.calls_to("POST /print/printers/{id}/jobs/release"),
        1
    );
    assert_eq!(
        control.calls_to("GET /print/pullPrintPrinters/{id}/jobs"),
        1
    );
}

#[tokio::test]
async fn a_scenario_builds_its_pull_printers_from_its_printers_and_its_people_sign_in() {
    use pullprintd::emulator::scenario::Scenario;
    let tenant = Scenario::default()
        .printer("Lobby MFP", true)
        .printer("Floor 2 MFP", true)
        .pull_printer("Follow me", &["Lobby MFP", "Floor 2 MFP"])
        .person(ADA, "Ada Lovelace")
        .start()
        .await
        .unwrap();
    let control = tenant.emulator.control();
    let job = control
        .submit_pull_job(NewJob {
            printer_id: tenant.pull_printer("Follow me").to_owned(),
            user_principal_name: ADA.into(),
            ..NewJob::default()
        })
        .unwrap();
    assert!(control.pull_job(&job).unwrap().waiting);
    assert_eq!(
        control.pull_job(&job).unwrap().pull_printer_id,
        tenant.pull_printer("Follow me")
    );
    // The scenario's person is in the directory the sign-in page lists.
    control
        .add_redirect_uri(DEMO_CLIENT_ID, super::emulator_sign_in::REDIRECT)
        .unwrap();
    let (_, challenge) = super::emulator_sign_in::pkce();
    let page = reqwest::Client::new()
        .get(tenant.emulator.authorize_url())
        .query(&super::emulator_sign_in::request(
            PERSON, &challenge, "s", "n",
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&format!("data-upn=\"{ADA}\"")), "{page}");

    let bad = Scenario::default()
        .printer("Lobby MFP", false)
        .pull_printer("Follow me", &["Nowhere"])
        .start()
        .await;
    assert!(bad.is_err(), "a member must be a printer of the scenario");
}
