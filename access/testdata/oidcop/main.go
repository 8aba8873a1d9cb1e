// SPDX-License-Identifier: Apache-2.0

// Command oidcop runs zitadel/oidc's example OpenID Provider (its exampleop
// and storage packages, unchanged) on a loopback address, for sealmail's
// OIDC tests: a real provider with discovery, a login form, the
// authorization code flow with PKCE, signed ID tokens and userinfo.
//
// It adds what the example cannot be told from outside: a listener on
// 127.0.0.1:0 (the issuer is printed on the first line of standard
// output), clients registered for the test's redirect URL, and per user an
// "AMR" list (the ID token's amr claim; the example sends only "pwd") and
// "Groups" (a groups claim in userinfo), read from the same users file as
// the example's own fields. It exits after -lifetime, or when standard
// input closes.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// extra is what the users file adds to the example's user.
type extra struct {
	AMR    []string
	Groups []string
}

// store is the example's storage with amr and groups per user.
type store struct {
	*storage.Storage
	extra map[string]extra
}

// amrRequest is an auth request whose amr is the user's configured one.
type amrRequest struct {
	*storage.AuthRequest
	amr []string
}

func (r amrRequest) GetAMR() []string { return r.amr }

func (s *store) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	ar, err := s.Storage.AuthRequestByCode(ctx, code)
	if err != nil {
		return nil, err
	}
	r := ar.(*storage.AuthRequest)
	if e, ok := s.extra[r.GetSubject()]; ok && e.AMR != nil {
		return amrRequest{AuthRequest: r, amr: e.AMR}, nil
	}
	return r, nil
}

func (s *store) SetUserinfoFromToken(ctx context.Context, ui *oidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, ui, tokenID, subject, origin); err != nil {
		return err
	}
	if e, ok := s.extra[subject]; ok && e.Groups != nil {
		ui.AppendClaims("groups", e.Groups)
	}
	return nil
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (loopback)")
	users := flag.String("users", "", "users file (the example's JSON, plus AMR and Groups)")
	redirect := flag.String("redirect", "", "redirect URIs of the clients web and other (comma-separated)")
	lifetime := flag.Duration("lifetime", 10*time.Minute, "exit after this long")
	flag.Parse()
	if err := run(*listen, *users, strings.Split(*redirect, ","), *lifetime); err != nil {
		fmt.Fprintln(os.Stderr, "oidcop:", err)
		os.Exit(1)
	}
}

func run(listen, usersFile string, redirect []string, lifetime time.Duration) error {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	issuer := "http://" + l.Addr().String() + "/"
	us, err := storage.StoreFromFile(usersFile)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(usersFile)
	if err != nil {
		return err
	}
	ex := map[string]extra{}
	if err := json.Unmarshal(data, &ex); err != nil {
		return err
	}
	storage.RegisterClients(storage.WebClient("web", "secret", redirect...), storage.WebClient("other", "secret", redirect...))
	st := &store{Storage: storage.NewStorage(us), extra: ex}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	router := exampleop.SetupServer(issuer, st, logger, false)
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second}
	fmt.Println(issuer)
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = srv.Close()
	}()
	time.AfterFunc(lifetime, func() { _ = srv.Close() })
	if err := srv.Serve(l); err != http.ErrServerClosed {
		return err
	}
	return nil
}
