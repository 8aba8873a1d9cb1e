package deps
import (
 _ "github.com/emersion/go-smtp"
 _ "github.com/emersion/go-message"
 _ "github.com/emersion/go-message/charset"
 _ "github.com/emersion/go-sasl"
 _ "go.etcd.io/bbolt"
 _ "github.com/blugelabs/bluge"
 _ "github.com/spf13/cobra"
 _ "filippo.io/age"
 _ "github.com/klauspost/compress/zstd"
 _ "github.com/pelletier/go-toml/v2"
 _ "gopkg.in/yaml.v3"
 _ "golang.org/x/text/encoding/htmlindex"
 _ "golang.org/x/net/html"
 _ "golang.org/x/sys/unix"
 _ "github.com/rogpeppe/go-internal/testscript"
)
