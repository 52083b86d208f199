package sim

import (
	"archive/zip"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// PackageInfo is what the simulator reads from a solution file's solution.xml.
type PackageInfo struct {
	UniqueName string
	Version    string
	Managed    bool
}

// SolutionPackage builds a minimal managed solution file (a zip with solution.xml,
// customizations.xml and [Content_Types].xml) that the simulator's import understands, for
// rehearsal package stores and tests.
func SolutionPackage(uniqueName, version string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	files := []struct{ name, body string }{
		{"[Content_Types].xml", `<?xml version="1.0" encoding="utf-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/octet-stream" /></Types>`},
		{"solution.xml", fmt.Sprintf(`<?xml version="1.0" encoding="utf-8"?>
<ImportExportXml version="9.2.24044.00196" SolutionPackageVersion="9.2" languagecode="1033" generatedBy="CrmLive">
  <SolutionManifest>
    <UniqueName>%s</UniqueName>
    <LocalizedNames><LocalizedName description="%s" languagecode="1033" /></LocalizedNames>
    <Version>%s</Version>
    <Managed>1</Managed>
    <Publisher><UniqueName>work365</UniqueName></Publisher>
  </SolutionManifest>
</ImportExportXml>
`, xmlEscape(uniqueName), xmlEscape(uniqueName), xmlEscape(version))},
		{"customizations.xml", `<?xml version="1.0" encoding="utf-8"?><ImportExportXml><Entities /><Roles /><Workflows /></ImportExportXml>`},
	}
	for _, f := range files {
		w, _ := zw.Create(f.name)
		_, _ = io.WriteString(w, f.body)
	}
	_ = zw.Close()
	return buf.Bytes()
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// ParsePackage reads the unique name, version and managed flag of a solution file.
func ParsePackage(data []byte) (PackageInfo, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return PackageInfo{}, fmt.Errorf("the solution file is not a zip archive: %v", err)
	}
	for _, f := range zr.File {
		if !strings.EqualFold(f.Name, "solution.xml") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return PackageInfo{}, err
		}
		defer rc.Close()
		var doc struct {
			Manifest struct {
				UniqueName string `xml:"UniqueName"`
				Version    string `xml:"Version"`
				Managed    string `xml:"Managed"`
			} `xml:"SolutionManifest"`
		}
		if err := xml.NewDecoder(rc).Decode(&doc); err != nil {
			return PackageInfo{}, fmt.Errorf("solution.xml is not valid XML: %v", err)
		}
		m := doc.Manifest
		if m.UniqueName == "" || !versionRE.MatchString(m.Version) {
			return PackageInfo{}, errors.New("solution.xml lacks a UniqueName or a valid Version")
		}
		return PackageInfo{UniqueName: m.UniqueName, Version: m.Version, Managed: m.Managed == "1" || strings.EqualFold(m.Managed, "true")}, nil
	}
	return PackageInfo{}, errors.New("the solution file has no solution.xml")
}
