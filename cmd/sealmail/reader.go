// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sealmail/sealmail/reader"
)

// The commands that need the index or the identity (search, hold, export,
// purge, erase, reindex, policy apply) go through the reader service's
// socket: root's command line is a client of the reader as people over
// HTTPS are, with every right.

// exitNoReader: no reader service answers (or it is locked): the command
// cannot search, decide on deletions or decrypt.
const exitNoReader = 5

// noReaderCode is the exit-code line of the commands that need the reader.
const noReaderCode = "5 no reader service answers on its socket (start one: `sealmail access`), or it is locked (`sealmail access unlock`)"

// defaultState is the reader's state directory unless named.
func defaultState() string {
	if s := os.Getenv("SEALMAIL_STATE"); s != "" {
		return s
	}
	return "/var/lib/sealmail-access"
}

// readerSocket returns the reader's socket: --reader, else SEALMAIL_READER,
// else reader.socket (or reader.state) in the configuration file
// ($SEALMAIL_CONFIG, else /etc/sealmail/sealmail.toml when it exists), else
// reader.sock in the default state directory.
func readerSocket(g *globalOptions) (string, error) {
	if g.reader != "" {
		return g.reader, nil
	}
	if s := os.Getenv("SEALMAIL_READER"); s != "" {
		return s, nil
	}
	path := os.Getenv("SEALMAIL_CONFIG")
	if path == "" {
		if _, err := os.Stat(defaultConfig); err == nil {
			path = defaultConfig
		}
	}
	if path != "" {
		cfg, err := loadConfig(path)
		if err != nil {
			return "", usageError{err}
		}
		switch {
		case cfg.Reader.Socket != "":
			return cfg.Reader.Socket, nil
		case cfg.Reader.State != "":
			return filepath.Join(cfg.Reader.State, reader.SocketName), nil
		}
	}
	return filepath.Join(defaultState(), reader.SocketName), nil
}

// defaultConfig is the packaged configuration file.
const defaultConfig = "/etc/sealmail/sealmail.toml"

// connectReader dials the reader's socket. Without a reader it says so and
// how to start one (exit code 5).
func connectReader(g *globalOptions) (*reader.Client, error) {
	path, err := readerSocket(g)
	if err != nil {
		return nil, err
	}
	c, err := reader.Dial(path)
	if errors.Is(err, reader.ErrNoReader) {
		return nil, exitCodeError{exitNoReader, fmt.Errorf("%w: start it (`sealmail access --data DIR --state STATEDIR --listen ADDR [--identity FILE]`, "+
			"or `systemctl start sealmail-access`), or name its socket with --reader or SEALMAIL_READER", err)}
	}
	return c, err
}

// readerError gives a locked reader's answer its exit code.
func readerError(err error) error {
	if reader.IsLocked(err) {
		return exitCodeError{exitNoReader, err}
	}
	return err
}

// withReader runs f with a reader client.
func withReader(g *globalOptions, f func(c *reader.Client) error) error {
	c, err := connectReader(g)
	if err != nil {
		return err
	}
	defer c.Close()
	return readerError(f(c))
}

// coverageNote says how far the index covers the archive.
func coverageNote(c reader.Coverage) string {
	s := fmt.Sprintf("the index covers the audit log through entry %d of %d", c.IndexedSeq, c.HeadSeq)
	if c.NotIndexed > 0 {
		s += fmt.Sprintf("; %d messages archived are not indexed yet", c.NotIndexed)
	}
	if c.Locked {
		s += "; the reader is locked"
	}
	return s
}

// waitCovered waits until the reader's index covers the audit log through
// target, calling progress between checks.
func waitCovered(ctx context.Context, c *reader.Client, target uint64, progress func(reader.Coverage)) (reader.Coverage, error) {
	for {
		st, err := c.Status(ctx)
		if err != nil {
			return reader.Coverage{}, err
		}
		if st.Locked {
			return st.Coverage, reader.ErrLocked
		}
		if st.Coverage.IndexedSeq >= target {
			return st.Coverage, nil
		}
		if progress != nil {
			progress(st.Coverage)
		}
		if err := sleepCtx(ctx, pollEvery); err != nil {
			return st.Coverage, err
		}
	}
}
