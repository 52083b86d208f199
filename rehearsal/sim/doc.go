// Package sim is a simulated Microsoft cloud for rehearsals and tests: one HTTP server that
// impersonates Entra ID's token endpoint (login.microsoftonline.com), Microsoft Graph,
// Dataverse organisations (*.crm*.dynamics.com) and the Partner Center API, driven by a
// scenario of customer tenants, with the actions people take in Microsoft's and Work 365's
// pages as Go methods (and an HTTP admin API on the host "sim.local"), and counters that let
// tests prove nothing was done twice.
//
// Production code never imports this package. Clients reach the simulator through
// Transport or Cloud.HTTPClient, which send requests for Microsoft hosts to the local server
// while keeping the original host in req.Host, so MSAL (with WithInstanceDiscovery(false) and
// WithHTTPClient) and the adapters run unmodified.
//
// People sign in too (signin.go): the authorization code flow with PKCE for the task desk's
// registration (Scenario.Desk, Cloud.DeskApp), a sign-in page for every scenario user and the
// partner tenant's operators, and RS256 ID tokens on the jwks_uri. SignIn fills the page from
// Go; Cloud.BrowserClient is a cookie-keeping client that reaches the cloud and loopback only.
//
// Time: everything that "takes time" in the cloud (asynchronous imports, job draining, link
// validity, token lifetime) is measured on an injectable Clock, so tests can advance a
// FakeClock instead of sleeping. Simulated latency (Faults.Latency) is real time.
//
// A test or rehearsal typically does:
//
//	scn, err := sim.LoadScenario("examples/sim-scenario.yaml") // or sim.Generate(50, seed)
//	clock := scn.NewClock()                                     // or sim.NewScaledClock(60), or nil for real time
//	cloud := sim.New(scn, sim.Options{Clock: clock})
//	defer cloud.Close()
//	hc := cloud.HTTPClient() // give it to msauth (with instance discovery off) and the adapters
//	people := autopilot.New(cloud, confirmer, autopilot.Options{}) // an activities.Notifier
//	...
//	cloud.Counters() // or GET http://sim.local/counters through hc
//
// Faults are drawn from one seeded generator per tenant, so a given sequence of calls to a
// tenant meets the same faults on every run; concurrent callers may interleave differently.
//
// Wire shapes follow Microsoft's public documentation independently of this module's own
// types, so the simulator can catch adapter mistakes rather than mirror them. Work 365's
// private names come from work365.DefaultNames (or the scenario's overrides).
package sim
