// SPDX-License-Identifier: Apache-2.0

package access

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// exampleConfig is the [access] section as docs/access.md shows it.
const exampleConfig = `
[access.webauthn]
rp_id = "archive.example.org"
origins = ["https://archive.example.org:8443"]

[access.sessions]
idle = "15m"
absolute = "8h"

[access.four_eyes]
hold_release = false
expiry = "48h"

[access.oidc]
return_path = "/app"

[[access.oidc.provider]]
name = "keycloak"
display_name = "Example Corp"
issuer = "https://id.example.org/realms/corp"
client_id = "sealmail"
client_secret_file = "SECRET"
redirect_url = "https://archive.example.org:8443/api/v1/oidc/keycloak/callback"
link_by_email = true
mfa = "provider"
acr_values = ["gold"]

[access.oidc.provider.provision]
address_claims = ["mail_aliases"]

[[access.oidc.provider.provision.role]]
claim = "groups"
value = "archive-officers"
role = "officer"
`

func decodeConfig(t *testing.T, text string) Config {
	t.Helper()
	var file struct {
		Access Config `toml:"access"`
	}
	dec := toml.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return file.Access
}

func TestConfigApply(t *testing.T) {
	t.Parallel()
	secret := filepath.Join(t.TempDir(), "kc.secret")
	if err := os.WriteFile(secret, []byte("s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := decodeConfig(t, strings.Replace(exampleConfig, "SECRET", secret, 1))
	var o Options
	if err := c.Apply(&o); err != nil {
		t.Fatalf("Apply = %v", err)
	}
	if o.WebAuthn.RPID != "archive.example.org" || !slices.Equal(o.WebAuthn.Origins, []string{"https://archive.example.org:8443"}) {
		t.Errorf("WebAuthn = %+v", o.WebAuthn)
	}
	if o.Sessions.Idle != 15*time.Minute || o.Sessions.Absolute != 8*time.Hour {
		t.Errorf("Sessions = %+v", o.Sessions)
	}
	if !slices.Equal(o.FourEyes.Off, []ApprovalAction{ApproveHoldRelease}) || o.FourEyes.Expiry != 48*time.Hour {
		t.Errorf("FourEyes = %+v", o.FourEyes)
	}
	if len(o.OIDC.Providers) != 1 || o.OIDC.ReturnPath != "/app" {
		t.Fatalf("OIDC = %+v", o.OIDC)
	}
	p := o.OIDC.Providers[0]
	if p.ClientSecret != "s3cr3t" || p.MFA != MFAProvider || !p.LinkByEmail || !slices.Equal(p.ACRValues, []string{"gold"}) ||
		p.Provision == nil || len(p.Provision.Roles) != 1 || p.Provision.Roles[0].Role != RoleOfficer ||
		!slices.Equal(p.Provision.AddressClaims, []string{"mail_aliases"}) {
		t.Errorf("provider = %+v", p)
	}
	// The options it makes start a state.
	o.StateDir, o.Password = filepath.Join(t.TempDir(), "state"), cheap
	srv, err := NewServer(o)
	if err != nil {
		t.Fatalf("NewServer with the applied config = %v", err)
	}
	if got := srv.State().OIDCProviders(); len(got) != 1 || got[0].DisplayName != "Example Corp" {
		t.Errorf("providers = %+v", got)
	}
	if srv.State().FourEyes().Required(ApproveHoldRelease) || !srv.State().FourEyes().Required(ApproveErase) {
		t.Error("four_eyes.hold_release = false not applied")
	}
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Error(err)
	}

	// The zero config changes nothing.
	var zero Options
	if err := (Config{}).Apply(&zero); err != nil || zero.WebAuthn.RPID != "" || len(zero.OIDC.Providers) != 0 || len(zero.FourEyes.Off) != 0 {
		t.Errorf("zero Config: %+v, %v", zero, err)
	}
}

func TestConfigApplyReportsEveryProblem(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	open := filepath.Join(dir, "open.secret")
	if err := os.WriteFile(open, []byte("s"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := decodeConfig(t, `
[access.webauthn]
origins = ["https://x"]
[[access.oidc.provider]]
name = "a"
issuer = "http://id.example.org"
client_id = "c"
redirect_url = "https://h/api/v1/oidc/a/callback"
[[access.oidc.provider]]
name = "b"
issuer = "https://id.example.org"
client_id = "c"
client_secret_file = "`+open+`"
redirect_url = "https://h/api/v1/oidc/b/callback"
[[access.oidc.provider]]
name = "c"
issuer = "https://id.example.org"
client_id = "c"
client_secret_file = "`+filepath.Join(dir, "missing")+`"
redirect_url = "https://h/api/v1/oidc/c/callback"
`)
	err := c.Apply(&Options{})
	if err == nil {
		t.Fatal("Apply accepted a bad config")
	}
	for _, want := range []string{"access.webauthn: origins or display_name without rp_id", "oidc provider 1 (a)",
		"(b): access: invalid client_secret_file", "(c): client_secret_file: open"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Apply = %v\nwant it to mention %q", err, want)
		}
	}
	var d Duration
	if err := d.UnmarshalText([]byte("-1h")); err == nil {
		t.Error("a negative duration was accepted")
	}
	if !errors.Is(c.Apply(&Options{}), ErrInvalid) {
		t.Error("Apply's error is not ErrInvalid")
	}
}

// TestConfigDocumented: the [access] example in docs/access.md decodes into
// Config with no unknown key.
func TestConfigDocumented(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/access.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "## Configuration")
	_, block, ok2 := strings.Cut(rest, "```toml\n")
	block, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("docs/access.md has no TOML example under \"## Configuration\"")
	}
	c := decodeConfig(t, block)
	if c.WebAuthn.RPID == "" || len(c.OIDC.Providers) != 1 || c.OIDC.Providers[0].Provision == nil ||
		len(c.OIDC.Providers[0].Provision.Roles) != 2 || c.FourEyes.Erase == nil || !*c.FourEyes.Erase {
		t.Errorf("documented config decoded to %+v", c)
	}
}
