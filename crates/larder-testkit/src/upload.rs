//! Hand-built upload requests (the legacy upload API's multipart form), for
//! the tests of what larder does with bad ones: every field can be left
//! out, repeated or made wrong, and the request is sent verbatim.

use std::net::SocketAddr;

use base64::Engine;

use crate::fixtures::Built;
use crate::http::{Response, send_raw};

/// The boundary every form uses.
const BOUNDARY: &str = "larder-test-boundary-7f3a9c";

/// A multipart upload form.
#[derive(Clone, Debug, Default)]
pub struct UploadForm {
    fields: Vec<(String, String)>,
    file: Option<(String, Vec<u8>)>,
}

impl UploadForm {
    /// The form twine would send for `built`: `:action`, `protocol_version`,
    /// `name`, `version`, `filetype`, `pyversion`, `metadata_version`,
    /// `sha256_digest`, and the file.
    pub fn for_file(built: &Built) -> UploadForm {
        let (filetype, pyversion) = if built.is_wheel() { ("bdist_wheel", "py3") } else { ("sdist", "source") };
        UploadForm::default()
            .field(":action", "file_upload")
            .field("protocol_version", "1")
            .field("metadata_version", "2.1")
            .field("name", &built.project)
            .field("version", &built.version)
            .field("filetype", filetype)
            .field("pyversion", pyversion)
            .field("sha256_digest", &built.sha256)
            .file(&built.filename, &built.bytes())
    }

    /// Adds a field (repeat to repeat it).
    pub fn field(mut self, name: &str, value: &str) -> UploadForm {
        self.fields.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Replaces every field called `name` with one of this value.
    pub fn set(self, name: &str, value: &str) -> UploadForm {
        self.without(name).field(name, value)
    }

    /// Removes every field called `name`.
    pub fn without(mut self, name: &str) -> UploadForm {
        self.fields.retain(|(n, _)| n != name);
        self
    }

    /// Sets the file part (`content`) with this filename and bytes.
    pub fn file(mut self, filename: &str, bytes: &[u8]) -> UploadForm {
        self.file = Some((filename.to_owned(), bytes.to_vec()));
        self
    }

    /// Removes the file part.
    pub fn without_file(mut self) -> UploadForm {
        self.file = None;
        self
    }

    /// The multipart body.
    pub fn body(&self) -> Vec<u8> {
        let mut body = Vec::new();
        for (name, value) in &self.fields {
            body.extend_from_slice(
                format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                    .as_bytes(),
            );
        }
        if let Some((filename, bytes)) = &self.file {
            body.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"content\"; filename=\"{filename}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        body
    }

    /// The whole request: `POST path` with the body, its `Content-Length`
    /// and HTTP Basic credentials `__token__:<token>` when given.
    pub fn request(&self, addr: SocketAddr, path: &str, token: Option<&str>) -> Vec<u8> {
        let body = self.body();
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(token) = token {
            head.push_str(&format!("Authorization: {}\r\n", basic_auth(token)));
        }
        head.push_str("\r\n");
        let mut request = head.into_bytes();
        request.extend_from_slice(&body);
        request
    }

    /// Sends the form to `path` on `addr`.
    pub fn send(&self, addr: SocketAddr, path: &str, token: Option<&str>) -> Response {
        send_raw(addr, &self.request(addr, path, token))
    }
}

/// The `Authorization` header value for a token.
pub fn basic_auth(token: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("__token__:{token}")))
}
