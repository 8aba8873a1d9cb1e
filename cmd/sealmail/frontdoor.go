// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
)

// exposureErrors refuses an SMTP listener that every network can reach
// while nothing restricts who may deliver: anyone could then fill the
// archive until min_free makes real journal mail wait.
func (c *Config) exposureErrors() []error {
	restricted := len(c.SMTP.AllowNetworks) > 0 || (len(c.SMTP.Users) > 0 && c.SMTP.RequireAuth)
	if restricted {
		return nil
	}
	var errs []error
	for _, a := range []struct{ key, v string }{{"smtp.listen", c.SMTP.Listen}, {"smtp.listen_tls", c.SMTP.ListenTLS}} {
		if a.v == "" || loopbackAddr(a.v) {
			continue
		}
		errs = append(errs, fmt.Errorf("%s = %q is reachable from other hosts, but any client may deliver: "+
			"set smtp.allow_networks to the journaling servers' networks, or smtp.users with smtp.require_auth = true "+
			"(or listen on 127.0.0.1 only)", a.key, a.v))
	}
	return errs
}

// loopbackAddr reports whether a HOST:PORT listens on loopback only.
func loopbackAddr(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// checkPermissions refuses a data directory that others may enter and key
// files that others may read, naming the fix. keyFiles that do not exist
// are skipped.
func checkPermissions(dataDir string, keyFiles []string) error {
	var errs []error
	fi, err := os.Stat(dataDir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if m := fi.Mode().Perm(); m != 0o700 {
		errs = append(errs, fmt.Errorf("data directory %s has mode %04o, want 0700 (it holds the keys and the catalog): run `chmod 700 %s`", dataDir, m, dataDir))
	}
	for _, f := range keyFiles {
		fi, err := os.Stat(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("key file: %w", err))
			continue
		}
		if m := fi.Mode().Perm(); m&0o077 != 0 {
			errs = append(errs, fmt.Errorf("key file %s has mode %04o: group and others may read it: run `chmod 600 %s`", f, m, f))
		}
	}
	return errors.Join(errs...)
}

// keyFiles are the secret files the daemon's archive directory may hold.
func keyFiles(dataDir string) []string {
	return []string{
		filepath.Join(dataDir, "digest.key"),
		filepath.Join(dataDir, "audit", "signing.key"),
		filepath.Join(dataDir, "identity.txt"),
	}
}

// wideIPv4Bits and wideIPv6Bits: a trusted network shorter than this is
// warned about.
const (
	wideIPv4Bits = 16
	wideIPv6Bits = 48
)

// warnInsecure logs loudly what is allowed but probably a mistake.
// underSystemd (INVOCATION_ID is set) adds a reminder of the unit's
// IP allow-list.
func warnInsecure(log *slog.Logger, cfg *Config, uid int, underSystemd bool) {
	if underSystemd {
		for _, p := range prefixes(cfg.SMTP.AllowNetworks) {
			if !p.Addr().IsLoopback() {
				log.Warn("packaging/sealmail.service lets only localhost connect (IPAddressDeny=any): add smtp.allow_networks as IPAddressAllow= in a drop-in (systemctl edit sealmail), or the journaling servers cannot connect", "network", p.String())
				break
			}
		}
	}
	for _, n := range []struct {
		key string
		v   []Network
	}{{"journal.sources", cfg.Journal.Sources}, {"smtp.allow_networks", cfg.SMTP.AllowNetworks}} {
		for _, p := range prefixes(n.v) {
			if (p.Addr().Is4() && p.Bits() < wideIPv4Bits) || (p.Addr().Is6() && p.Bits() < wideIPv6Bits) {
				log.Warn(fmt.Sprintf("INSECURE: %s includes %s, %d addresses or more: every host there is trusted as a journaling source (its reports set envelopes; it gets reserved connection slots). List the journaling servers only.", n.key, p, uint64(1)<<min(63, p.Addr().BitLen()-p.Bits())), "network", p.String())
			}
		}
	}
	if uid == 0 {
		log.Warn("INSECURE: sealmail serve runs as root: a flaw in the SMTP receiver would own the host. Run it as its own user (packaging/sealmail.service: User=sealmail, AmbientCapabilities=CAP_NET_BIND_SERVICE for port 25).")
	}
}
