// Command starter is the operations team's CLI: plan and launch upgrades from an inventory,
// follow them, complete human tasks, steer and report.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"github.com/csp-ops/work365-upgrade/workflows/spec"
)

// Exit codes: 0 done, 1 failed, 2 the preflight found a tenant not ready (nothing started).
func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the CLI with everything it prints passed through terminalSafe: names, notes and
// errors come from inventories, people and workflow histories, and must not drive the terminal.
func run(args []string, stdout, stderr io.Writer) int {
	out, errOut := terminalSafe{stdout}, terminalSafe{stderr}
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(out)
	root.SetErr(errOut)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(errOut, "starter:", err)
		return exitCode(err)
	}
	return 0
}

// terminalSafe removes what could take over a terminal from text written to it: escape
// sequences (colours, titles, cursor moves, clipboard writes), other control characters and
// invalid UTF-8. Newlines, tabs and carriage returns stay (tables and the progress bar need
// them), and so does erase-in-line (ESC [ … K), which the progress bar redraws with.
type terminalSafe struct{ w io.Writer }

func (t terminalSafe) Write(p []byte) (int, error) {
	if _, err := t.w.Write(sanitizeTerminal(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

func sanitizeTerminal(p []byte) []byte {
	out := make([]byte, 0, len(p))
	s := string(p)
	for i := 0; i < len(s); {
		c := s[i]
		if c == 0x1b {
			n := spec.EscapeSequenceLen(s[i:])
			if seq := s[i : i+n]; n > 2 && seq[1] == '[' && seq[n-1] == 'K' && isCSIParams(seq[2:n-1]) {
				out = append(out, seq...)
			}
			i += n
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError && size == 1:
			out = append(out, "\uFFFD"...)
		case r == '\n' || r == '\t' || r == '\r':
			out = append(out, byte(r))
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069):
		default:
			out = append(out, string(r)...)
		}
	}
	return out
}

func isCSIParams(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && s[i] != ';' {
			return false
		}
	}
	return true
}

func exitCode(err error) int {
	var nr errNotReady
	if errors.As(err, &nr) {
		return 2
	}
	return 1
}
