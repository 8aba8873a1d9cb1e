// SPDX-License-Identifier: Apache-2.0

package web

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/text/language"

	"github.com/sealmail/sealmail/access"
)

// The interface speaks English and German (the first users are German
// companies under GoBD). A browser's choice is remembered in langCookie,
// set by the language switch at the foot of every page; without it,
// Accept-Language decides, and English is the default.
const langCookie = "__Host-sealmail-lang"

// message is one text of the interface in every language. Texts with %s or
// %d take arguments (fmt verbs; %[2]s to reorder).
type message struct{ key, en, de string }

// catalogue holds the texts by language and key.
type catalogue struct {
	byLang  map[string]map[string]string
	codes   []string
	matcher language.Matcher
}

func newCatalogue() catalogue {
	c := catalogue{byLang: map[string]map[string]string{"en": {}, "de": {}}, codes: []string{"en", "de"},
		matcher: language.NewMatcher([]language.Tag{language.English, language.German})}
	for _, m := range messages() {
		c.byLang["en"][m.key], c.byLang["de"][m.key] = m.en, m.de
	}
	return c
}

// text is key's text in lang, formatted with args; a missing key shows as
// itself (a test checks that none is missing).
func (c catalogue) text(lang, key string, args ...any) string {
	s, ok := c.byLang[lang][key]
	if !ok {
		return key
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

// lang is the language of r's page: the remembered choice, else the best
// match of Accept-Language (whose length is bounded before parsing).
func (u *ui) lang(r *http.Request) string {
	if c, err := r.Cookie(langCookie); err == nil {
		if _, ok := u.cat.byLang[c.Value]; ok {
			return c.Value
		}
	}
	al := r.Header.Get("Accept-Language")
	if len(al) > 256 {
		al = al[:256]
		if i := strings.LastIndexByte(al, ','); i > 0 {
			al = al[:i] // whole entries only
		}
	}
	tags, _, err := language.ParseAcceptLanguage(al)
	if err != nil || len(tags) == 0 {
		return u.cat.codes[0]
	}
	_, i, _ := u.cat.matcher.Match(tags...)
	return u.cat.codes[i]
}

// setLang remembers the language chosen with the switch and goes back to
// the page it was on.
func (u *ui) setLang(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || !validFormToken(r) {
		u.refused(w, r, access.RefusedCSRF)
		return
	}
	l := r.PostForm.Get("lang")
	if _, ok := u.cat.byLang[l]; ok {
		http.SetCookie(w, &http.Cookie{Name: langCookie, Value: l, Path: "/", Secure: true, HttpOnly: true,
			SameSite: http.SameSiteLaxMode, MaxAge: int((365 * 24 * time.Hour).Seconds())})
	}
	http.Redirect(w, r, localPath(r.PostForm.Get("next")), http.StatusSeeOther)
}

// messages is the catalogue (the pages' own lists appended).
func messages() []message {
	return append([]message{
		{"format.time", "2006-01-02 15:04 UTC", "02.01.2006, 15:04 UTC"},

		{"layout.skip", "Skip to content", "Zum Inhalt springen"},
		{"layout.signout", "Sign out", "Abmelden"},
		{"layout.nav", "Main", "Hauptnavigation"},
		{"layout.language", "Language:", "Sprache:"},

		{"role.admin", "admin", "Administration"},
		{"role.auditor", "auditor", "Prüfer"},
		{"role.officer", "compliance officer", "Compliance-Beauftragte"},
		{"role.user", "user", "Benutzer"},
		{"role.admin.about", "You manage users and see the archive's status and audit log, but no message content.",
			"Sie verwalten Benutzer und sehen Status und Prüfprotokoll des Archivs, aber keine Nachrichteninhalte."},
		{"role.auditor.about", "You search, read and export messages, read-only, within your scope.",
			"Sie suchen, lesen und exportieren Nachrichten, nur lesend, in Ihrem Prüfbereich."},
		{"role.officer.about", "You search and export messages, place legal holds and request erasure.",
			"Sie suchen und exportieren Nachrichten, setzen Aufbewahrungssperren und beantragen Löschungen."},
		{"role.user.about", "You search and read your own messages.",
			"Sie suchen und lesen Ihre eigenen Nachrichten."},

		{"nav.search", "Search", "Suche"},
		{"nav.search.about", "Find messages by sender, recipient, date, text or attachment.",
			"Nachrichten nach Absender, Empfänger, Datum, Text oder Anhang finden."},
		{"nav.holds", "Legal holds", "Aufbewahrungssperren"},
		{"nav.holds.about", "Keep messages that match a query from deletion.",
			"Nachrichten, die einer Suche entsprechen, vor dem Löschen bewahren."},
		{"nav.exports", "Exports", "Exporte"},
		{"nav.exports.about", "Export search results as EML, mbox or PST, with a manifest.",
			"Suchergebnisse als EML, mbox oder PST exportieren, mit Manifest."},
		{"nav.approvals", "Approvals", "Freigaben"},
		{"nav.approvals.about", "Approve or refuse the requests of other officers (four eyes).",
			"Anträge anderer Beauftragter freigeben oder ablehnen (Vier-Augen-Prinzip)."},
		{"nav.users", "Users", "Benutzer"},
		{"nav.users.about", "Add users, disable, enable and reset them.",
			"Benutzer anlegen, sperren, entsperren und zurücksetzen."},
		{"nav.status", "Status", "Status"},
		{"nav.status.about", "Ingest, journaling sources, disk, index and whether the reader is unlocked.",
			"Eingang, Journaling-Quellen, Speicherplatz, Index und ob der Leser entsperrt ist."},
		{"nav.audit", "Audit log", "Prüfprotokoll"},
		{"nav.audit.about", "Every sign-in, search, read, export and change, and whether the log verifies.",
			"Jede Anmeldung, Suche, Lesung, jeder Export und jede Änderung, und ob das Protokoll unversehrt ist."},
		{"nav.account", "Sessions and keys", "Sitzungen und Schlüssel"},
		{"nav.account.about", "See where you are signed in, sign out there, manage your security keys.",
			"Sehen, wo Sie angemeldet sind, dort abmelden, Ihre Sicherheitsschlüssel verwalten."},

		{"home.title", "Start", "Start"},
		{"home.hello", "Welcome, %s", "Willkommen, %s"},
		{"home.role", "Your role: %s.", "Ihre Rolle: %s."},

		{"signin.title", "Sign in", "Anmelden"},
		{"signin.user", "User name", "Benutzername"},
		{"signin.password", "Password", "Passwort"},
		{"signin.code", "Code", "Code"},
		{"signin.code.help", "The 6-digit code of your authenticator app, or a recovery code. At your first sign-in, leave it empty.",
			"Der 6-stellige Code Ihrer Authenticator-App oder ein Wiederherstellungscode. Bei der ersten Anmeldung leer lassen."},
		{"signin.submit", "Sign in", "Anmelden"},
		{"signin.webauthn", "Sign in with a security key", "Mit Sicherheitsschlüssel anmelden"},
		{"signin.webauthn.failed", "The security key did not answer. Enter user name and password first, then try again.",
			"Der Sicherheitsschlüssel hat nicht geantwortet. Geben Sie zuerst Benutzername und Passwort ein und versuchen Sie es erneut."},
		{"signin.webauthn.noscript", "Security keys need JavaScript; the code works without.",
			"Sicherheitsschlüssel brauchen JavaScript; der Code geht auch ohne."},
		{"signin.providers", "Or", "Oder"},
		{"signin.with", "Sign in with %s", "Anmelden mit %s"},
		{"signin.failed", "Sign-in failed. Check user name, password and code.",
			"Anmeldung fehlgeschlagen. Prüfen Sie Benutzername, Passwort und Code."},
		{"signin.throttled", "Too many failed sign-ins. Try again in %d seconds.",
			"Zu viele fehlgeschlagene Anmeldungen. Versuchen Sie es in %d Sekunden erneut."},

		{"enrol.title", "Set up your authenticator app", "Authenticator-App einrichten"},
		{"enrol.intro", "From now on you sign in with your password and a code from an authenticator app (such as FreeOTP, Aegis or Google Authenticator).",
			"Von nun an melden Sie sich mit Ihrem Passwort und einem Code aus einer Authenticator-App an (etwa FreeOTP, Aegis oder Google Authenticator)."},
		{"enrol.scan", "Scan this QR code with the app.", "Scannen Sie diesen QR-Code mit der App."},
		{"enrol.qr", "QR code for the authenticator app", "QR-Code für die Authenticator-App"},
		{"enrol.open", "On this phone: open in the app", "Auf diesem Telefon: in der App öffnen"},
		{"enrol.manual", "Or type the key:", "Oder tippen Sie den Schlüssel ein:"},
		{"enrol.code", "The 6-digit code the app shows", "Der 6-stellige Code, den die App zeigt"},
		{"enrol.submit", "Confirm", "Bestätigen"},
		{"enrol.wrong", "That code does not match. Check the app's clock and enter the current code.",
			"Dieser Code passt nicht. Prüfen Sie die Uhrzeit der App und geben Sie den aktuellen Code ein."},
		{"enrol.cancel", "Cancel and sign out", "Abbrechen und abmelden"},
		{"enrolled.title", "Your authenticator app is set up", "Ihre Authenticator-App ist eingerichtet"},
		{"enrolled.intro", "If you lose the app, sign in with one of these recovery codes instead of a code. Each works once.",
			"Wenn Sie die App verlieren, melden Sie sich statt mit einem Code mit einem dieser Wiederherstellungscodes an. Jeder gilt einmal."},
		{"enrolled.continue", "Continue", "Weiter"},

		{"cred.title", "Sign-in credentials", "Anmeldedaten"},
		{"cred.added", "User %s (%s) was added.", "Benutzer %s (%s) wurde angelegt."},
		{"cred.reset", "The sign-in of %s was reset; their sessions have ended.",
			"Die Anmeldung von %s wurde zurückgesetzt; die Sitzungen sind beendet."},
		{"cred.once", "Shown only now: sealmail keeps no copy. Hand them over securely.",
			"Nur jetzt sichtbar: sealmail behält keine Kopie. Geben Sie sie sicher weiter."},
		{"cred.user", "User name", "Benutzername"},
		{"cred.password", "Password", "Passwort"},
		{"cred.totp", "Authenticator app", "Authenticator-App"},
		{"cred.totp.help", "Scan this QR code with the authenticator app, or type the key.",
			"Diesen QR-Code mit der Authenticator-App scannen oder den Schlüssel eintippen."},
		{"cred.recovery", "Recovery codes", "Wiederherstellungscodes"},
		{"cred.enrol", "At the first sign-in, %s enters this password, leaves the code empty and sets up an authenticator app. Nobody else sees that factor.",
			"Bei der ersten Anmeldung gibt %s dieses Passwort ein, lässt den Code leer und richtet eine Authenticator-App ein. Niemand sonst sieht diesen Faktor."},
		{"cred.back", "Back to users", "Zurück zu den Benutzern"},

		{"factor.legend", "Second factor", "Zweiter Faktor"},
		{"factor.enrol", "They set it up at their first sign-in (you see only the password)",
			"Er oder sie richtet ihn bei der ersten Anmeldung ein (Sie sehen nur das Passwort)"},
		{"factor.handover", "Show me a TOTP key and recovery codes to hand over",
			"Mir einen TOTP-Schlüssel und Wiederherstellungscodes zum Weitergeben zeigen"},

		{"users.title", "Users", "Benutzer"},
		{"users.caption", "%d users", "%d Benutzer"},
		{"users.name", "User name", "Benutzername"},
		{"users.name.help", "1–64 of a–z, 0–9 and . _ @ -", "1–64 Zeichen aus a–z, 0–9 und . _ @ -"},
		{"users.role", "Role", "Rolle"},
		{"users.addresses", "Mail addresses", "E-Mail-Adressen"},
		{"users.addresses.help", "Separated by spaces or commas. A user of role user reads the messages of these addresses.",
			"Getrennt durch Leerzeichen oder Kommas. Ein Benutzer der Rolle Benutzer liest die Nachrichten dieser Adressen."},
		{"users.scope", "Scope", "Prüfbereich"},
		{"users.scope.help", "Auditors only: a search query that limits what they see, such as from:acme.example.",
			"Nur Prüfer: eine Suchanfrage, die begrenzt, was sie sehen, etwa from:acme.example."},
		{"users.expires", "Access until", "Zugang bis"},
		{"users.expires.help", "Auditors only: access ends when this day is over (UTC).",
			"Nur Prüfer: Der Zugang endet mit Ablauf dieses Tages (UTC)."},
		{"users.state", "State", "Zustand"},
		{"users.actions", "Actions", "Aktionen"},
		{"users.enabled", "enabled", "aktiv"},
		{"users.disabled", "disabled", "gesperrt"},
		{"users.enrolpending", "sets up the second factor at the next sign-in", "richtet den zweiten Faktor bei der nächsten Anmeldung ein"},
		{"users.codesleft", "%d recovery codes left", "%d Wiederherstellungscodes übrig"},
		{"users.keys", "%d security keys", "%d Sicherheitsschlüssel"},
		{"users.enable", "Enable", "Entsperren"},
		{"users.enable.label", "Enable %s", "%s entsperren"},
		{"users.disable", "Disable", "Sperren"},
		{"users.disable.label", "Disable %s", "%s sperren"},
		{"users.reset", "Reset", "Zurücksetzen"},
		{"users.reset.label", "Reset the sign-in of %s", "Anmeldung von %s zurücksetzen"},
		{"users.add", "Add a user", "Benutzer anlegen"},
		{"users.add.submit", "Add user", "Benutzer anlegen"},
		{"users.add.failed", "The user was not added:", "Der Benutzer wurde nicht angelegt:"},
		{"users.add.exists", "A user of that name exists.", "Einen Benutzer dieses Namens gibt es schon."},
		{"users.done.disabled", "%s is disabled; their sessions have ended.", "%s ist gesperrt; die Sitzungen sind beendet."},
		{"users.done.enabled", "%s is enabled.", "%s ist entsperrt."},

		{"reset.title", "Reset %s", "%s zurücksetzen"},
		{"reset.intro", "%s gets a new password and loses the second factor, recovery codes and security keys; their sessions end.",
			"%s bekommt ein neues Passwort und verliert zweiten Faktor, Wiederherstellungscodes und Sicherheitsschlüssel; die Sitzungen enden."},
		{"reset.submit", "Reset", "Zurücksetzen"},
		{"reset.cancel", "Cancel", "Abbrechen"},

		{"account.title", "Sessions and keys", "Sitzungen und Schlüssel"},
		{"account.sessions", "Where you are signed in", "Wo Sie angemeldet sind"},
		{"account.sessions.help", "A session you do not know? Sign it out, and change your password with an admin.",
			"Eine Sitzung, die Sie nicht kennen? Melden Sie sie ab und lassen Sie Ihr Passwort von der Administration zurücksetzen."},
		{"account.signedin", "Signed in", "Angemeldet"},
		{"account.lastseen", "Last used", "Zuletzt genutzt"},
		{"account.ends", "Ends if unused", "Endet ungenutzt"},
		{"account.from", "From", "Von"},
		{"account.method", "With", "Mit"},
		{"account.this", "this one", "diese"},
		{"account.revoke", "Sign out", "Abmelden"},
		{"account.revoke.this", "Sign out here", "Hier abmelden"},
		{"account.keys", "Security keys", "Sicherheitsschlüssel"},
		{"account.keys.help", "A security key or passkey can stand in for the code at sign-in.",
			"Ein Sicherheitsschlüssel oder Passkey kann bei der Anmeldung den Code ersetzen."},
		{"account.keys.none", "You have no security keys.", "Sie haben keine Sicherheitsschlüssel."},
		{"account.key.added", "added %s", "hinzugefügt %s"},
		{"account.key.used", "last used %s", "zuletzt genutzt %s"},
		{"account.key.remove", "Remove", "Entfernen"},
		{"account.key.name", "Name of the new key", "Name des neuen Schlüssels"},
		{"account.key.add", "Add a security key", "Sicherheitsschlüssel hinzufügen"},
		{"account.key.failed", "The key was not added.", "Der Schlüssel wurde nicht hinzugefügt."},
		{"account.done.revoked", "The session was signed out.", "Die Sitzung wurde abgemeldet."},
		{"account.done.key-added", "The security key was added.", "Der Sicherheitsschlüssel wurde hinzugefügt."},
		{"account.done.key-removed", "The security key was removed.", "Der Sicherheitsschlüssel wurde entfernt."},

		{"method.password+totp", "password and code", "Passwort und Code"},
		{"method.password+recovery-code", "password and recovery code", "Passwort und Wiederherstellungscode"},
		{"method.password+webauthn", "password and security key", "Passwort und Sicherheitsschlüssel"},
		{"method.password (enrolment)", "password (setting up)", "Passwort (Einrichtung)"},

		{"error.home", "To the start page", "Zur Startseite"},
		{"error.forbidden", "Not for your role", "Nicht für Ihre Rolle"},
		{"error.forbidden.text", "Your role may not open this page.", "Ihre Rolle darf diese Seite nicht öffnen."},
		{"error.csrf", "Form expired", "Formular abgelaufen"},
		{"error.csrf.text", "This form has expired or did not come from this site. Go back, reload the page and try again.",
			"Dieses Formular ist abgelaufen oder kam nicht von dieser Seite. Gehen Sie zurück, laden Sie die Seite neu und versuchen Sie es erneut."},
		{"error.invalid", "Not accepted", "Nicht angenommen"},
		{"error.invalid.text", "The request was not accepted:", "Die Anfrage wurde nicht angenommen:"},
		{"error.notfound", "Not found", "Nicht gefunden"},
		{"error.notfound.text", "There is no such user, session or key (any more).", "Diesen Benutzer, diese Sitzung oder diesen Schlüssel gibt es nicht (mehr)."},
		{"error.lastadmin", "Last admin", "Letzte Administration"},
		{"error.lastadmin.text", "This is the last enabled admin: nobody could manage users any more.",
			"Das ist der letzte aktive Administrator: Niemand könnte mehr Benutzer verwalten."},
		{"error.internal", "Something went wrong", "Etwas ist schiefgegangen"},
		{"error.internal.text", "The reader could not do this. The error is in its log.",
			"Der Leser konnte das nicht tun. Der Fehler steht in seinem Protokoll."},
	}, append(searchMessages(), opsMessages()...)...)
}
