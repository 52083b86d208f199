// Package browser starts headless Chromium for rehearsal tests, kept off the network: no
// updates, sync or prefetching, and with a proxy, Microsoft's hosts reached only through the
// simulated cloud's HTTPS proxy (sim.Proxy) while loopback (the desk, the Web UI) is direct.
package browser

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium is where .ci/install-chromium puts the browser.
const Chromium = "/usr/bin/chromium"

// Require skips t when Chromium is missing, except in CI, where it fails it.
func Require(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(Chromium); err != nil {
		if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
			t.Fatalf("%s is missing in CI (.ci/install-chromium installs it): %v", Chromium, err)
		}
		t.Skipf("browser check skipped: %s is missing (install it with .ci/install-chromium)", Chromium)
	}
}

// Options are the allocator options: headless, no sandbox, a fresh profile in userDataDir,
// none of Chromium's own traffic (which floods a closed network) and, when proxyURL is set,
// that proxy for every non-loopback host with its certificates trusted (sim.Proxy issues them
// from a CA Chromium's store does not hold).
func Options(userDataDir, proxyURL string, extra ...chromedp.ExecAllocatorOption) []chromedp.ExecAllocatorOption {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(Chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.UserDataDir(userDataDir),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("dns-prefetch-disable", true),
	)
	if proxyURL != "" {
		opts = append(opts, chromedp.ProxyServer(proxyURL), chromedp.Flag("ignore-certificate-errors", true))
	}
	return append(opts, extra...)
}

// New starts a browser for t (Require first) and returns its context, bounded by timeout;
// the browser ends with the test.
func New(t testing.TB, proxyURL string, timeout time.Duration, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	Require(t)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), Options(t.TempDir(), proxyURL, extra...)...)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	bctx, cancelTimeout := context.WithTimeout(bctx, timeout)
	t.Cleanup(func() { cancelTimeout(); cancelBrowser(); cancelAlloc() })
	return bctx
}
