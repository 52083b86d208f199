// Package sdkcontract holds only a test: Microsoft's own Graph client models
// (github.com/microsoftgraph/msgraph-sdk-go, deserialised with kiota's JSON parse node) read the
// simulated Graph's real HTTP answers, so the shapes the simulator serves are Microsoft's, not
// merely the ones our adapters expect. It is its own package because the SDK's models take long
// to compile; nothing imports it.
package sdkcontract
