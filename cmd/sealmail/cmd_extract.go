// SPDX-License-Identifier: Apache-2.0

package main

import (
	"io"

	"github.com/sealmail/sealmail/extract"
)

// extractChildArg is the hidden first argument that makes sealmail the
// attachment-extraction sandbox's child (extract.ServeChild): the reader
// service re-executes its own binary with it for every attachment, making
// its extract.Sandbox with Command {os.Executable(), extractChildArg}. It
// is not a cobra command: the child reads no configuration and sets up no
// logging, and nothing but extract.Sandbox should run it.
const extractChildArg = "__extract-child"

// runExtractChild serves one extraction on stdin and stdout.
func runExtractChild(stdin io.Reader, stdout io.Writer) int {
	return extract.ServeChild(stdin, stdout)
}
