package integration

import (
	"encoding/base64"
	"strings"
)

// decodedPayloads finds every "data" field (base64 payload bytes) in a history event's JSON and
// returns their decoded text, so secrets inside payloads are visible to the search.
func decodedPayloads(v any) string {
	var b strings.Builder
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, val := range x {
				if s, ok := val.(string); ok && k == "data" {
					if d, err := base64.StdEncoding.DecodeString(s); err == nil {
						b.Write(d)
						b.WriteByte('\n')
					}
				}
				walk(val)
			}
		case []any:
			for _, val := range x {
				walk(val)
			}
		}
	}
	walk(v)
	return b.String()
}
