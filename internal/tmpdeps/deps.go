package deps

import (
	_ "filippo.io/age"
	_ "github.com/blugelabs/bluge"
	_ "github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset"
	_ "github.com/emersion/go-sasl"
	_ "github.com/emersion/go-smtp"
	_ "github.com/klauspost/compress/zstd"
	_ "github.com/pelletier/go-toml/v2"
	_ "github.com/rogpeppe/go-internal/testscript"
	_ "github.com/spf13/cobra"
	_ "go.etcd.io/bbolt"
	_ "golang.org/x/net/html"
	_ "golang.org/x/sys/unix"
	_ "golang.org/x/text/encoding/htmlindex"
	_ "gopkg.in/yaml.v3"
)
