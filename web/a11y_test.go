// SPDX-License-Identifier: Apache-2.0

package web

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/sealmail/sealmail/access"
)

// The viewports the main pages are checked and photographed at: a laptop
// and a phone.
const (
	desktopWidth, desktopHeight = 1280, 900
	phoneWidth, phoneHeight     = 390, 844
)

// TestMainPages walks through the main pages of every role as a person
// would and, on each, checks what a person with a screen reader, a
// keyboard or weak eyes needs (lang, one h1, labels, names, contrast
// ≥ 4.5:1), that nothing violates the CSP and that the page fits a
// phone's width. It keeps screenshots: at both sizes in
// $SEALMAIL_SCREENSHOTS if set (make screenshots), else the laptop's in
// the test's temporary directory.
func TestMainPages(t *testing.T) {
	t.Parallel()
	dir := screenshotDir(t)
	e := newEnv(t, envOptions{reader: true})
	ctx := context.Background()
	root := e.add(t, "root", access.RoleAdmin)
	_, rep, env := sampleMail("http://127.0.0.1:9")
	mail := e.ingest(t, env, rep)
	for _, s := range []string{"Board meeting on Thursday", "Travel expenses March", "Re: Supplier contract renewal"} {
		raw, env := plainMail("jane@example.com", s)
		e.ingest(t, env, raw)
	}
	if _, err := e.st.AddUser(ctx, access.Actor{Remote: "test"}, access.NewUser{Name: "tax", Role: access.RoleAuditor,
		Scope: "from:acme.example", Expires: time.Now().AddDate(1, 0, 0).Truncate(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.AddUser(ctx, access.Actor{Remote: "test"}, access.NewUser{Name: "jane", Role: access.RoleUser,
		Addresses: []string{"jane@example.com"}, Enrol: true}); err != nil {
		t.Fatal(err)
	}
	officer := e.add(t, "olga", access.RoleOfficer, "olga@example.com")
	shots := 0
	visit := func(name string, b *tab) {
		t.Helper()
		shots += screenshot(t, dir, name, b)
	}

	s := e.tab(t)
	s.open(pathSignIn)
	visit("signin", s)
	s.signInHere("root", "wrong password", "123456")
	visit("signin-failed", s)

	a := e.tab(t)
	a.signIn("root", root.Password, e.clk.code(t, root.TOTPSecret))
	visit("home-admin", a)
	a.open(pathUsers)
	visit("users", a)
	a.do(chromedp.SendKeys(chromedp.ID("name"), "ben"), chromedp.SetValue(chromedp.ID("role"), "auditor"),
		chromedp.SendKeys(chromedp.ID("scope"), "from:acme.example"), chromedp.Click(chromedp.ID("factor-handover")))
	a.submit(`#add-user button[type=submit]`)
	visit("credentials", a)
	a.open(pathUsers + "/tax/reset")
	visit("reset", a)
	a.open(pathAccount)
	visit("account", a)

	n := e.tab(t)
	pw, err := e.st.ResetUserForEnrolment(ctx, access.Actor{Remote: "test"}, "jane")
	if err != nil {
		t.Fatal(err)
	}
	n.signIn("jane", pw.Password, "")
	visit("enrol", n)
	n.do(chromedp.SendKeys(chromedp.ID("code"), e.clk.code(t, strings.ReplaceAll(n.text("#totp-secret"), " ", ""))))
	n.submit(`main form.stack button`)
	visit("enrolled", n)
	n.open("/audit")
	visit("forbidden", n)
	n.open(pathSearch + "?q=" + url.QueryEscape("to:jane@example.com"))
	visit("search", n)
	n.open(fmt.Sprintf("%s/%d", pathMessages, mail))
	frameText(t, n, "/body") // the screenshot shows the HTML body
	visit("message", n)

	o := e.tab(t)
	if _, err := chromedp.Call(o.ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": "de"}}); err != nil {
		t.Fatal(err)
	}
	o.signIn("olga", officer.Password, e.clk.code(t, officer.TOTPSecret))
	visit("home-officer-de", o)
	t.Logf("%d screenshots in %s", shots, dir)
}

// screenshotDir is where the tests' screenshots go: SEALMAIL_SCREENSHOTS
// (made if missing), else the test's temporary directory.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SEALMAIL_SCREENSHOTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// screenshot checks the page b shows (checkPage, and that it is no wider
// than a phone) and saves it as dir/name.png, with SEALMAIL_SCREENSHOTS
// also at phone size as name-phone.png. It returns how many it saved.
func screenshot(t *testing.T, dir, name string, b *tab) int {
	t.Helper()
	checkPage(t, name, b)
	keepAll := os.Getenv("SEALMAIL_SCREENSHOTS") != ""
	shots := 0
	for _, vp := range []struct {
		suffix string
		w, h   int64
		opts   []chromedp.EmulateViewportOption
	}{{"", desktopWidth, desktopHeight, nil}, {"-phone", phoneWidth, phoneHeight, []chromedp.EmulateViewportOption{chromedp.EmulateMobile}}} {
		b.do(chromedp.EmulateViewport(vp.w, vp.h, vp.opts...))
		if vp.w == phoneWidth {
			if w := eval[int](b, `document.documentElement.scrollWidth`); w > phoneWidth {
				t.Errorf("%s: %d px wide on a %d px phone (scrolls sideways)", name, w, phoneWidth)
			}
		}
		if vp.w == phoneWidth && !keepAll {
			continue // phone screenshots only for make screenshots: each costs a tenth of a second
		}
		img, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(img))
		if err != nil || cfg.Width != int(vp.w) {
			t.Errorf("%s screenshot: %v, %d px wide, want a %d px PNG", name, err, cfg.Width, vp.w)
		}
		if err := os.WriteFile(filepath.Join(dir, name+vp.suffix+".png"), img, 0o644); err != nil {
			t.Fatal(err)
		}
		shots++
	}
	b.do(chromedp.EmulateReset())
	return shots
}

// checkPage checks the page b shows for accessibility and its CSP.
func checkPage(t *testing.T, name string, b *tab) {
	t.Helper()
	if v := b.violations(); len(v) != 0 {
		t.Errorf("%s: CSP violations %q", name, v)
	}
	if l := eval[string](b, `document.documentElement.lang`); l != "en" && l != "de" {
		t.Errorf("%s: lang = %q", name, l)
	}
	if n := eval[int](b, `document.querySelectorAll("h1").length`); n != 1 {
		t.Errorf("%s: %d h1 headings, want 1", name, n)
	}
	for _, problem := range eval[[]string](b, a11yScript) {
		t.Errorf("%s: %s", name, problem)
	}
}

// a11yScript lists, for the page shown, form fields without a label,
// buttons, links and images without a name, table headers without a
// scope, and text whose contrast against its background is below 4.5:1
// (WCAG 2.2 1.4.3; alpha blended over the backgrounds behind it).
const a11yScript = `(() => {
  const out = [];
  const visible = (el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== "hidden"; };
  for (const el of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
    if (el.labels.length === 0 && !el.getAttribute("aria-label") && !el.getAttribute("aria-labelledby")) out.push("field without a label: " + el.outerHTML.slice(0, 80));
  }
  for (const el of document.querySelectorAll("button, a[href], [role=img], svg")) {
    const name = (el.getAttribute("aria-label") || el.innerText || el.getAttribute("title") || "").trim();
    if (visible(el) && name === "") out.push("no accessible name: " + el.outerHTML.slice(0, 80));
  }
  for (const th of document.querySelectorAll("th")) {
    if (!th.getAttribute("scope")) out.push("th without scope: " + th.innerText);
  }
  const rgba = (c) => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null; const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number); return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 }; };
  const over = (f, b) => ({ r: f.r * f.a + b.r * (1 - f.a), g: f.g * f.a + b.g * (1 - f.a), b: f.b * f.a + b.b * (1 - f.a), a: 1 });
  const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }; return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) { const c = rgba(getComputedStyle(e).backgroundColor); if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; } }
    let bg = { r: 255, g: 255, b: 255, a: 1 };
    for (const l of layers.reverse()) bg = over(l, bg);
    return bg;
  };
  const seen = new Set();
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    const el = n.parentElement;
    if (!n.textContent.trim() || seen.has(el) || !visible(el)) continue;
    seen.add(el);
    const bg = background(el), fg = over(rgba(getComputedStyle(el).color), bg);
    const [hi, lo] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const ratio = (hi + 0.05) / (lo + 0.05);
    if (ratio < 4.5) out.push("contrast " + ratio.toFixed(2) + ":1 of " + el.tagName + " " + JSON.stringify(n.textContent.trim().slice(0, 40)));
  }
  return out;
})()`

// TestKeyboard: the sign-in page is used in a sensible order with Tab, the
// focused element always shows a focus ring, and the skip link comes
// first and shows when focused.
func TestKeyboard(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	b := e.tab(t)
	b.open(pathSignIn)
	focused := func() string {
		return eval[string](b, `(() => { const a = document.activeElement; return a.id || a.className || a.getAttribute("value") || a.tagName; })()`)
	}
	// autofocus is applied after the load event, a moment later under load.
	f := focused()
	for deadline := time.Now().Add(5 * time.Second); f != "user" && time.Now().Before(deadline); f = focused() {
		time.Sleep(50 * time.Millisecond)
	}
	if f != "user" {
		t.Fatalf("focus on load: %q, want the user name field", f)
	}
	ring := func() {
		t.Helper()
		ok := eval[bool](b, `(() => { const s = getComputedStyle(document.activeElement); return document.activeElement.matches(":focus-visible") && s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2; })()`)
		if !ok {
			t.Errorf("%q has focus but shows no focus ring", focused())
		}
	}
	ring()
	var forward []string
	for range 5 {
		b.do(chromedp.KeyEvent("\t"))
		forward = append(forward, focused())
		ring()
	}
	if want := []string{"password", "code", "primary", "de", "en"}; strings.Join(forward, " ") != strings.Join(want, " ") {
		t.Errorf("Tab order from the user name: %q, want %q", forward, want)
	}
	b.do(chromedp.Focus(chromedp.ID("user")))
	var back []string
	for range 2 {
		b.do(chromedp.KeyEvent("\t", chromedp.KeyModifiers(chromedp.ModifierShift)))
		back = append(back, focused())
		ring()
	}
	if want := []string{"brand", "skip"}; strings.Join(back, " ") != strings.Join(want, " ") {
		t.Errorf("Shift+Tab order from the user name: %q, want %q", back, want)
	}
	if top := eval[float64](b, `document.activeElement.getBoundingClientRect().top`); top < 0 {
		t.Errorf("the focused skip link is off screen (top %v)", top)
	}
}

// TestA11yScriptFinds: the checks of checkPage find what they look for, so
// that their silence on the real pages means something.
func TestA11yScriptFinds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	b := e.tab(t)
	b.open(pathSignIn)
	if p := eval[[]string](b, a11yScript); len(p) != 0 {
		t.Fatalf("sign-in page: %q", p)
	}
	// CSSOM changes from DevTools are not inline styles; the CSP lets them be.
	eval[bool](b, `(() => {
		const p = document.createElement("p"); p.textContent = "pale"; p.style.color = "#aaa"; document.querySelector("main").append(p);
		const i = document.createElement("input"); i.name = "unlabelled"; document.querySelector("main").append(i);
		const a = document.createElement("a"); a.href = "/"; a.style.display = "block"; a.style.height = "1em"; document.querySelector("main").append(a);
		return true;
	})()`)
	got := strings.Join(eval[[]string](b, a11yScript), "\n")
	for _, want := range []string{`contrast 2.32:1 of P "pale"`, "field without a label", "no accessible name: <a"} {
		if !strings.Contains(got, want) {
			t.Errorf("checks found:\n%s\nwant %q", got, want)
		}
	}
}
