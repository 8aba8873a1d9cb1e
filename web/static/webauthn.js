// SPDX-License-Identifier: Apache-2.0
// sealmail: security keys (WebAuthn) on the sign-in and account pages, the
// only script of the web interface. Every page works without it; security
// keys need the browser's navigator.credentials, so they need it.
"use strict";
(() => {
  if (!window.PublicKeyCredential) {
    return;
  }
  // base64url without padding, as the reader's JSON has it.
  const decode = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  const encode = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const post = async (url, csrf, body) => {
    const headers = { "Content-Type": "application/json" };
    if (csrf) {
      headers["X-CSRF-Token"] = csrf;
    }
    const r = await fetch(url, { method: "POST", headers, body: body ? JSON.stringify(body) : undefined, credentials: "same-origin" });
    if (!r.ok) {
      throw new Error(url + ": " + r.status);
    }
    return r.status === 204 ? null : r.json();
  };
  const descriptors = (list) => (list || []).forEach((d) => { d.id = decode(d.id); });

  // Sign-in: with user name and password typed, the key answers a
  // challenge; its answer goes with the form, in place of a code.
  const signin = document.getElementById("webauthn-signin");
  if (signin) {
    const form = signin.form;
    const failed = document.getElementById("webauthn-error");
    signin.hidden = false;
    signin.addEventListener("click", async () => {
      failed.hidden = true;
      if (!form.elements.user.reportValidity() || !form.elements.password.reportValidity()) {
        return;
      }
      try {
        const c = await post(signin.dataset.begin);
        const pk = c.publicKey;
        pk.challenge = decode(pk.challenge);
        descriptors(pk.allowCredentials);
        const cred = await navigator.credentials.get({ publicKey: pk });
        const res = cred.response;
        form.elements.webauthn_ceremony.value = c.ceremony;
        form.elements.webauthn_credential.value = JSON.stringify({
          id: cred.id, rawId: encode(cred.rawId), type: cred.type,
          response: {
            authenticatorData: encode(res.authenticatorData), clientDataJSON: encode(res.clientDataJSON),
            signature: encode(res.signature), userHandle: res.userHandle ? encode(res.userHandle) : null,
          },
          clientExtensionResults: cred.getClientExtensionResults(),
        });
        form.elements.code.value = "";
        form.submit();
      } catch (e) {
        failed.hidden = false;
      }
    });
  }

  // Account: register a new key under the name typed.
  const reg = document.getElementById("webauthn-register");
  if (reg) {
    const failed = document.getElementById("webauthn-error");
    reg.hidden = false;
    reg.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      failed.hidden = true;
      const csrf = reg.elements.csrf.value;
      try {
        const c = await post(reg.dataset.begin, csrf);
        const pk = c.publicKey;
        pk.challenge = decode(pk.challenge);
        pk.user.id = decode(pk.user.id);
        descriptors(pk.excludeCredentials);
        const cred = await navigator.credentials.create({ publicKey: pk });
        const res = cred.response;
        await post(reg.dataset.finish, csrf, {
          name: reg.elements.name.value,
          credential: {
            id: cred.id, rawId: encode(cred.rawId), type: cred.type,
            response: {
              attestationObject: encode(res.attestationObject), clientDataJSON: encode(res.clientDataJSON),
              transports: res.getTransports ? res.getTransports() : [],
            },
            clientExtensionResults: cred.getClientExtensionResults(),
          },
        });
        window.location.assign(reg.dataset.done);
      } catch (e) {
        failed.hidden = false;
      }
    });
  }
})();
