package yamlfile

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type doc struct {
	Name  string `yaml:"name"`
	Items []struct {
		N int `yaml:"n"`
	} `yaml:"items"`
}

func TestRefusesASecondDocument(t *testing.T) {
	var d doc
	err := Decode("f.yaml", []byte("name: a\nitems:\n  - {n: 1}\n---\nitems:\n  - {n: 2}\n"), &d)
	require.EqualError(t, err, "f.yaml:4: (document): a second YAML document starts here (a stray ---?): one file holds one document, so nothing after it would be read; remove the ---")
	// Even an empty second document: the --- is a mistake either way.
	require.ErrorContains(t, Decode("f.yaml", []byte("name: a\n---\n"), &d), "f.yaml:2: (document): a second YAML document")
	// A leading --- opens the one document and is fine.
	require.NoError(t, Decode("f.yaml", []byte("---\nname: a\n"), &d))
	require.Equal(t, "a", d.Name)
}

// aliasBomb is the classic "billion laughs": each level nine aliases of the previous one.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	prev := "a"
	for _, l := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		b.WriteString(l + ": &" + l + " [")
		for i := 0; i < 9; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString("*" + prev)
		}
		b.WriteString("]\n")
		prev = l
	}
	return b.String()
}

func TestAliasBombIsRefusedQuickly(t *testing.T) {
	bomb := aliasBomb()
	require.Less(t, len(bomb), 4096)
	start := time.Now()
	_, err := Parse("bomb.yaml", []byte(bomb))
	took := time.Since(start)
	require.ErrorContains(t, err, "bomb.yaml:2: (document): aliases expand the file to more than 1048576 nodes")
	// Generous for a shared CI machine; the unbounded decoder took 6.5 s on this input.
	require.Less(t, took, 2*time.Second, "the bound is checked without expanding")
	// A few honest aliases are fine.
	_, err = Parse("ok.yaml", []byte("x: &x {n: 1}\ny: *x\nz: *x\n"))
	require.NoError(t, err)
}

func TestRefusesAFileOverTheSizeCap(t *testing.T) {
	big := "name: " + strings.Repeat("x", MaxSize) + "\n"
	var d doc
	err := Decode("big.yaml", []byte(big), &d)
	require.ErrorContains(t, err, "big.yaml: (document): the file is")
	require.ErrorContains(t, err, "at most 8388608 are read")
}

func TestTypeErrorsNameLineAndField(t *testing.T) {
	var d doc
	err := Decode("f.yaml", []byte("name: a\nitems:\n  - n: 1\n  - n: lots\n  - m: 3\n"), &d)
	require.ErrorContains(t, err, "f.yaml:4: items[1].n: cannot unmarshal !!str `lots` into int")
	require.ErrorContains(t, err, "f.yaml:5: items[2].m: unknown field (not a key of struct")
	err = Decode("f.yaml", []byte("name: [\n"), &d)
	require.ErrorContains(t, err, "f.yaml:")
	require.ErrorContains(t, err, "(document): ")
}

// BenchmarkAliasBombRefused measures refusing the 4 KB alias bomb (unbounded, the scenario
// decoder took 6.5 s and 455 MB on such a file):
// go test -run '^$' -bench AliasBomb -benchmem ./internal/yamlfile
func BenchmarkAliasBombRefused(b *testing.B) {
	bomb := []byte(aliasBomb())
	for b.Loop() {
		if _, err := Parse("bomb.yaml", bomb); err == nil {
			b.Fatal("the alias bomb was accepted")
		}
	}
}
