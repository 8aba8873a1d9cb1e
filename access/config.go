// SPDX-License-Identifier: Apache-2.0

package access

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Config is the [access] section of sealmail's configuration file (TOML),
// for the reader command to decode and [Config.Apply] onto its [Options];
// docs/access.md, "Configuration", shows every key. Its zero value changes
// nothing.
type Config struct {
	WebAuthn WebAuthnConfig `toml:"webauthn"`
	Sessions SessionsConfig `toml:"sessions"`
	FourEyes FourEyesConfig `toml:"four_eyes"`
	OIDC     OIDCConfig     `toml:"oidc"`
}

// WebAuthnConfig is [access.webauthn]: [WebAuthnOptions], the one place
// the reader's WebAuthn is configured.
type WebAuthnConfig struct {
	RPID        string   `toml:"rp_id"`
	Origins     []string `toml:"origins"`
	DisplayName string   `toml:"display_name"`
}

// SessionsConfig is [access.sessions]: [SessionOptions].
type SessionsConfig struct {
	Idle     Duration `toml:"idle"`
	Absolute Duration `toml:"absolute"`
}

// FourEyesConfig is [access.four_eyes]: each action needs a second
// officer's approval unless set to false.
type FourEyesConfig struct {
	Erase            *bool    `toml:"erase"`
	HoldRelease      *bool    `toml:"hold_release"`
	RetentionShorten *bool    `toml:"retention_shorten"`
	Expiry           Duration `toml:"expiry"`
}

// OIDCConfig is [access.oidc] with its [[access.oidc.provider]] tables.
type OIDCConfig struct {
	ReturnPath       string               `toml:"return_path"`
	SecondFactorPath string               `toml:"second_factor_path"`
	Providers        []OIDCProviderConfig `toml:"provider"`
}

// OIDCProviderConfig is one [[access.oidc.provider]]: [OIDCProvider], with
// the client secret read from a file.
type OIDCProviderConfig struct {
	Name        string `toml:"name"`
	DisplayName string `toml:"display_name"`
	Issuer      string `toml:"issuer"`
	ClientID    string `toml:"client_id"`
	// ClientSecretFile holds the client secret (one line); it must not be
	// readable by others.
	ClientSecretFile string                  `toml:"client_secret_file"`
	Scopes           []string                `toml:"scopes"`
	RedirectURL      string                  `toml:"redirect_url"`
	LinkByEmail      bool                    `toml:"link_by_email"`
	TrustEmail       bool                    `toml:"trust_email"`
	EmailDomains     []string                `toml:"email_domains"`
	MFA              string                  `toml:"mfa"`
	MFAMethods       []string                `toml:"mfa_methods"`
	ACRValues        []string                `toml:"acr_values"`
	UserInfo         bool                    `toml:"userinfo"`
	Provision        *OIDCProvisioningConfig `toml:"provision"`
}

// OIDCProvisioningConfig is [access.oidc.provider.provision] with its
// [[access.oidc.provider.provision.role]] rules: [OIDCProvisioning].
type OIDCProvisioningConfig struct {
	NameClaim     string           `toml:"name_claim"`
	AddressClaims []string         `toml:"address_claims"`
	Roles         []OIDCRoleConfig `toml:"role"`
}

// OIDCRoleConfig is one [[access.oidc.provider.provision.role]]:
// [OIDCRoleRule].
type OIDCRoleConfig struct {
	Claim string `toml:"claim"`
	Value string `toml:"value"`
	Role  string `toml:"role"`
}

// Duration is a duration in the configuration: "30m", "72h".
type Duration time.Duration

// UnmarshalText implements [encoding.TextUnmarshaler].
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil || v < 0 {
		return fmt.Errorf("duration %q: want a non-negative Go duration such as \"30m\" or \"72h\"", b)
	}
	*d = Duration(v)
	return nil
}

// Apply sets o's WebAuthn, Sessions, FourEyes and OIDC from c, reading the
// client secrets, and checks them as [NewServer] would. It returns every
// problem at once (joined), each naming its key.
func (c Config) Apply(o *Options) error {
	var errs []error
	w := c.WebAuthn
	if w.RPID != "" || len(w.Origins) > 0 || w.DisplayName != "" {
		o.WebAuthn = WebAuthnOptions(w)
		if w.RPID == "" {
			errs = append(errs, fmt.Errorf("access.webauthn: origins or display_name without rp_id"))
		} else if _, err := newWebAuthn(o.WebAuthn); err != nil {
			errs = append(errs, fmt.Errorf("access.webauthn: %w", err))
		}
	}
	if c.Sessions.Idle != 0 {
		o.Sessions.Idle = time.Duration(c.Sessions.Idle)
	}
	if c.Sessions.Absolute != 0 {
		o.Sessions.Absolute = time.Duration(c.Sessions.Absolute)
	}
	fe := c.FourEyes
	o.FourEyes.Expiry = time.Duration(fe.Expiry)
	o.FourEyes.Off = nil
	for _, x := range []struct {
		on     *bool
		action ApprovalAction
	}{{fe.Erase, ApproveErase}, {fe.HoldRelease, ApproveHoldRelease}, {fe.RetentionShorten, ApproveRetentionShorten}} {
		if x.on != nil && !*x.on {
			o.FourEyes.Off = append(o.FourEyes.Off, x.action)
		}
	}
	o.OIDC = OIDCOptions{ReturnPath: c.OIDC.ReturnPath, SecondFactorPath: c.OIDC.SecondFactorPath}
	for i, pc := range c.OIDC.Providers {
		p, err := pc.provider()
		if err != nil {
			errs = append(errs, fmt.Errorf("access.oidc.provider[%d] (%s): %w", i, pc.Name, err))
			continue
		}
		o.OIDC.Providers = append(o.OIDC.Providers, p)
	}
	if _, err := newOIDC(o.OIDC); err != nil {
		errs = append(errs, fmt.Errorf("access.oidc: %w", err))
	}
	return errors.Join(errs...)
}

// provider makes the provider of pc, reading its client secret.
func (pc OIDCProviderConfig) provider() (OIDCProvider, error) {
	p := OIDCProvider{Name: pc.Name, DisplayName: pc.DisplayName, Issuer: pc.Issuer, ClientID: pc.ClientID,
		Scopes: pc.Scopes, RedirectURL: pc.RedirectURL, LinkByEmail: pc.LinkByEmail, TrustEmail: pc.TrustEmail,
		EmailDomains: pc.EmailDomains, MFA: OIDCMFA(pc.MFA), MFAMethods: pc.MFAMethods, ACRValues: pc.ACRValues,
		UserInfo: pc.UserInfo}
	if pc.ClientSecretFile != "" {
		secret, err := readSecret(pc.ClientSecretFile)
		if err != nil {
			return OIDCProvider{}, err
		}
		p.ClientSecret = secret
	}
	if pr := pc.Provision; pr != nil {
		p.Provision = &OIDCProvisioning{NameClaim: pr.NameClaim, AddressClaims: pr.AddressClaims}
		for _, r := range pr.Roles {
			p.Provision.Roles = append(p.Provision.Roles, OIDCRoleRule{Claim: r.Claim, Value: r.Value, Role: Role(r.Role)})
		}
	}
	return p, nil
}

// readSecret reads a one-line secret from a file that others cannot read.
func readSecret(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("client_secret_file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("client_secret_file: %w", err)
	}
	if fi.Mode().Perm()&0o007 != 0 {
		return "", fmt.Errorf("%w client_secret_file %s: mode %04o lets others read it: chmod o-rwx %s", ErrInvalid, path, fi.Mode().Perm(), path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 4097))
	if err != nil {
		return "", fmt.Errorf("client_secret_file %s: %w", path, err)
	}
	if len(b) > 4096 {
		return "", fmt.Errorf("%w client_secret_file %s: longer than 4096 bytes", ErrInvalid, path)
	}
	secret := strings.TrimRight(string(b), "\r\n")
	if secret == "" || strings.ContainsAny(secret, "\r\n") {
		return "", fmt.Errorf("%w client_secret_file %s: want one line", ErrInvalid, path)
	}
	return secret, nil
}
