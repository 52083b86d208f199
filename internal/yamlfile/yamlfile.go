// Package yamlfile decodes YAML files strictly (unknown keys are errors) and reports every
// problem as file:line: message, the way operators expect from a config or inventory.
package yamlfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

var lineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// Decode decodes data (read from path) into out, refusing unknown keys.
func Decode(path string, data []byte, out any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil && !errors.Is(err, io.EOF) {
		return Wrap(path, err)
	}
	return nil
}

// Wrap rewrites a yaml error ("yaml: line 3: …", or a list of "line N: …") as path:N: ….
func Wrap(path string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		errs := make([]error, 0, len(te.Errors))
		for _, e := range te.Errors {
			errs = append(errs, errors.New(at(path, e)))
		}
		return errors.Join(errs...)
	}
	return errors.New(at(path, strings.TrimPrefix(err.Error(), "yaml: ")))
}

// At formats a problem found at a line of a file.
func At(path string, line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", path, line, fmt.Sprintf(format, args...))
}

func at(path, msg string) string {
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		return path + ":" + m[1] + ": " + m[2]
	}
	return path + ": " + msg
}
