package devserver

import (
	"testing"

	"github.com/stretchr/testify/require"
	"modernc.org/memory"
)

// TestSQLiteAllocatorRetainsPages guards the embedded server's SQLite allocator
// (modernc.org/memory, through modernc.org/libc). Before v1.12 it unmapped a region the
// moment its last block was freed and mapped every block over 16 KiB on its own: at 1,000
// tenants a quarter of the server's CPU went to mmap and munmap, most of it under visibility
// writes (each REPLACE compiles a program of tens of KiB). v1.12 keeps freed regions for
// reuse (and added Allocator.Trim, so an older version does not compile here).
func TestSQLiteAllocatorRetainsPages(t *testing.T) {
	var a memory.Allocator
	defer func() { require.NoError(t, a.Close()) }()
	for _, size := range []int{20 << 10, 40 << 10, 1 << 20} {
		p, err := a.UintptrMalloc(size)
		require.NoError(t, err)
		require.NoError(t, a.UintptrFree(p))
		q, err := a.UintptrMalloc(size)
		require.NoError(t, err)
		require.Equal(t, p, q, "a freed region of %d bytes is reused, not unmapped and mapped anew", size)
		require.NoError(t, a.UintptrFree(q))
	}
	require.NoError(t, a.Trim())
}
