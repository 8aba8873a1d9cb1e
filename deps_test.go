// SPDX-License-Identifier: Apache-2.0

package sealmail_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/sealmail/sealmail"

// layers is the architecture (DESIGN.md, STYLE.md "Dependency direction"):
// for each package, the project packages it may import. Packages not listed
// may import nothing of ours but the root package.
var layers = map[string][]string{
	"cmd/sealmail": {"smtpd", "api", "archive", "access", "reader", "web", "vfs", "extract"},
	"access":       {"index/query"},
	"web":          {"access", "archive", "reader", "index/query", "mimepart"},
	"api":          {"archive"},
	// The reader service: the receiver through api's client, archive's
	// types and checks, the index, people from access; audit for its
	// event types only.
	"reader":     {"access", "api", "archive", "audit", "export", "index", "index/query", "policy", "vfs"},
	"archive":    {"journal", "store", "index/query", "policy", "audit", "export", "export/pst", "offsite", "vfs"},
	"index":      {"index/query", "mimepart", "vfs", "extract"},
	"policy":     {"index/query"},
	"journal":    {"mimepart"},
	"export":     {"export/pst", "mimepart", "vfs"},
	"export/pst": {"mimepart"},

	// vfs is a bottom-tier package: whoever writes durable files uses it.
	"store":           {"vfs"},
	"offsite":         {"vfs"},
	"audit":           {"vfs"},
	"smtpd":           {"vfs"},
	"vfs/vfstest":     {"vfs"},
	"store/storetest": {"store"},
	// The receiver of the reader's and the web interface's tests.
	"reader/readertest": {"api", "archive"},
	// The offsite copy's test server (versitygw).
	"offsite/offsitetest": {"offsite"},
}

// why explains the rules a failure most likely breaks.
var why = map[string]string{
	"cmd/sealmail": "the CLI reaches the archive through archive and api, the reader through reader: they provide their types, errors and paths",
	"archive":      "the receiver keeps no index: the reader service does",
	"reader":       "the reader reaches the archive only through the control socket (api) and archive's types",
	"api":          "the control socket carries archive's types and errors only",
	"store":        "store knows nothing of MIME, the index or SMTP",
	"index":        "index knows nothing of segments",
	"smtpd":        "smtpd sees the archive only through its Ingester interface",
	"journal":      "leaves never import each other",
	"audit":        "leaves never import each other",
	"offsite":      "leaves never import each other: offsite knows files and bytes, archive what they are",
	"mimepart":     "mimepart is the bottom-tier MIME reader: it imports nothing of ours",
	"extract":      "extract is the bottom-tier attachment text extractor: it imports nothing of ours",
	"vfs":          "vfs is a bottom-tier package: standard library only",
}

// onlyLibs lists the packages that may use no module but these (and the
// standard library).
var onlyLibs = map[string][]string{
	"mimepart": {"github.com/emersion/go-message"},
	// The sandbox (x/sys: Landlock, seccomp, prlimit; x/net/bpf: the
	// seccomp filter), HTML text (x/net/html), code pages (x/text).
	"extract": {"golang.org/x/sys", "golang.org/x/net", "golang.org/x/text"},
}

// thirdParty confines libraries to the packages that own them.
var thirdParty = map[string][]string{
	"go.etcd.io/bbolt":                {"store", "access"},
	"github.com/pquerna/otp":          {"access"},
	"github.com/go-webauthn/webauthn": {"access"},
	"github.com/coreos/go-oidc/v3":    {"access"}, // OIDC sign-in
	"golang.org/x/oauth2":             {"access"},
	// The web interface's QR codes (the encoder pquerna/otp uses too); its
	// browser tests' DevTools client.
	"github.com/boombuler/barcode":    {"web"},
	"github.com/chromedp/chromedp":    {"web"},
	"github.com/chromedp/cdproto":     {"web"},
	"github.com/emersion/go-smtp":     {"smtpd"},
	"github.com/blugelabs/bluge":      {"index"},
	"github.com/spf13/cobra":          {"cmd/sealmail"},
	"github.com/klauspost/compress":   {"store"},
	"github.com/pelletier/go-toml/v2": {"cmd/sealmail"},
	// age: the store encrypts; archive decrypts for the CLI and the reader
	// with the identities they hold; offsite seals a backup's keys.
	"filippo.io/age":                 {"store", "archive", "offsite", "cmd/sealmail", "reader", "reader/readertest"},
	"github.com/emersion/go-message": {"mimepart", "index", "journal", "export", "export/pst"},
	"github.com/emersion/go-imap/v2": {"export"}, // the IMAP import reader
	// The daemon's /metrics endpoint (and its test's parser).
	"github.com/prometheus/client_golang": {"cmd/sealmail"},
	"github.com/prometheus/client_model":  {"cmd/sealmail"},
	"github.com/prometheus/common":        {"cmd/sealmail"},
	// The S3 client of the offsite copy (signing, checksums, retries):
	// the offsite package and its test server only.
	"github.com/aws/aws-sdk-go-v2": {"offsite"},
	"github.com/aws/smithy-go":     {"offsite"},
}

func TestDependencyDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		seen++
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		for _, imp := range p.Imports {
			if ours, ok := strings.CutPrefix(imp, module+"/"); ok {
				if strings.HasPrefix(ours, rel+"/internal") {
					continue
				}
				// A package's internal helpers (benchmark programs, test
				// commands) may use the package they belong to.
				if parent, _, ok := strings.Cut(rel, "/internal/"); ok && allowed([]string{parent}, ours) {
					continue
				}
				if !allowed(layers[rel], ours) {
					t.Errorf("%s imports %s: not allowed (%s); see STYLE.md, Dependency direction", pkgName(rel), ours, why[rel])
				}
				continue
			}
			if imp == module && rel == "" {
				t.Errorf("root package imports itself")
			}
			if rel == "" && strings.Contains(imp, ".") {
				t.Errorf("root package imports %s: it must use the standard library only", imp)
			}
			if libs, ok := onlyLibs[rel]; ok && strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") && !allowed(libs, imp) {
				t.Errorf("%s imports %s: it may use only the standard library and %v", pkgName(rel), imp, libs)
			}
			for lib, owners := range thirdParty {
				if (imp == lib || strings.HasPrefix(imp, lib+"/")) && !allowed(owners, rel) {
					t.Errorf("%s imports %s: that library belongs to %v", pkgName(rel), imp, owners)
				}
			}
		}
	}
	if seen < 5 {
		t.Fatalf("go list returned %d packages: is the module path %s?", seen, module)
	}
}

func allowed(list []string, pkg string) bool {
	for _, a := range list {
		if a == pkg || strings.HasPrefix(pkg, a+"/") {
			return true
		}
	}
	return false
}

func pkgName(rel string) string {
	if rel == "" {
		return "sealmail"
	}
	return rel
}
