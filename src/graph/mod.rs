//! Microsoft Graph print client: Entra ID authentication, national clouds, retries, typed model.
