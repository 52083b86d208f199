package msapi

import (
	"net/url"
	"sort"
	"strings"
)

// EncodeQuery encodes query parameters for Graph and Dataverse: keys sorted, values
// percent-encoded with spaces as %20 (never '+', which some OData parsers keep literally), and
// the '$' and '@' that start OData system query options and parameter aliases left readable.
func EncodeQuery(v url.Values) string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		ek := escape(k)
		ek = strings.NewReplacer("%24", "$", "%40", "@").Replace(ek)
		for _, val := range v[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(ek)
			b.WriteByte('=')
			b.WriteString(escape(val))
		}
	}
	return b.String()
}

func escape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// ODataString quotes s as an OData string literal: single quotes around, single quotes inside
// doubled. Use it for every value put into a $filter.
func ODataString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// JoinURL appends an escaped path and an encoded query to a base URL; base's trailing slash
// and path's leading slash are merged.
func JoinURL(base, path string, query url.Values) string {
	u := strings.TrimRight(base, "/") + "/" + strings.TrimLeft(path, "/")
	if len(query) > 0 {
		u += "?" + EncodeQuery(query)
	}
	return u
}
