package sim

import "maps"

// TenantCounters counts what happened in one tenant. Counters only grow.
type TenantCounters struct {
	// Imports counts accepted ImportSolutionAsync calls; ImportsRefused those refused at once
	// (reused ImportJobId, another solution operation running, bad body).
	Imports        int `json:"imports"`
	ImportsRefused int `json:"importsRefused"`
	// ImportsSucceeded and ImportsFailed count finished imports.
	ImportsSucceeded int `json:"importsSucceeded"`
	ImportsFailed    int `json:"importsFailed"`
	// HoldingImports counts accepted imports with HoldingSolution true.
	HoldingImports int `json:"holdingImports"`
	// Uninstalls counts accepted UninstallSolutionAsync calls; UninstallsRefused refused ones.
	Uninstalls        int `json:"uninstalls"`
	UninstallsRefused int `json:"uninstallsRefused"`
	// PortalInstalls counts completed portal installs (by import or InstallPortal).
	PortalInstalls int `json:"portalInstalls"`
	// PortalUninstalls counts completed portal uninstalls.
	PortalUninstalls int `json:"portalUninstalls"`
	// Freezes and Unfreezes count changes of the Work 365 freeze setting (false→true and
	// true→false); FreezeWrites counts every PATCH of it.
	Freezes      int `json:"freezes"`
	Unfreezes    int `json:"unfreezes"`
	FreezeWrites int `json:"freezeWrites"`
	// TokenRequests counts token requests per resource (e.g. https://graph.microsoft.com);
	// TokensIssued counts the successful ones.
	TokenRequests map[string]int `json:"tokenRequests"`
	TokensIssued  int            `json:"tokensIssued"`
	// Calls counts API calls per route, e.g. "GET graph /v1.0/users/{id}".
	Calls map[string]int `json:"calls"`
	// Unauthorized counts API calls refused 401/403 for their token.
	Unauthorized int `json:"unauthorized"`
	// Throttled counts 429 answers served; Unavailable 503 answers.
	Throttled   int `json:"throttled"`
	Unavailable int `json:"unavailable"`
	// BudgetThrottled counts the 429 answers (within Throttled) of spent service protection
	// budgets (budget.go), as opposed to random faults.
	BudgetThrottled int `json:"budgetThrottled"`
	// LinksIssued counts upgrade links issued by GetConsent.
	LinksIssued int `json:"linksIssued"`
	// BeginUpgradeAttempts counts BeginUpgrade calls; BeginUpgradeRefusals the refused ones.
	BeginUpgradeAttempts int `json:"beginUpgradeAttempts"`
	BeginUpgradeRefusals int `json:"beginUpgradeRefusals"`
	// Promotions counts staged upgrades promoted to the main solution; PromotionsFailed the
	// upgrades that failed.
	Promotions       int `json:"promotions"`
	PromotionsFailed int `json:"promotionsFailed"`
	// Initialisations counts Begin Upgrade runs of new installs (nothing staged to promote).
	Initialisations int `json:"initialisations"`
	// Consents counts admin consents given to the Work 365 app.
	Consents int `json:"consents"`
	// Registrations counts submitted Work 365 registrations.
	Registrations int `json:"registrations"`
	// PartnerReconsents counts Partner Center re-consents done in this (partner) tenant.
	PartnerReconsents int `json:"partnerReconsents"`
	// Actions counts simulator actions by name, refused ones included.
	Actions map[string]int `json:"actions"`
	// ActionsRefused counts refused simulator actions by name.
	ActionsRefused map[string]int `json:"actionsRefused"`
}

func newTenantCounters() *TenantCounters {
	return &TenantCounters{
		TokenRequests:  map[string]int{},
		Calls:          map[string]int{},
		Actions:        map[string]int{},
		ActionsRefused: map[string]int{},
	}
}

func (c *TenantCounters) clone() TenantCounters {
	out := *c
	out.TokenRequests = maps.Clone(c.TokenRequests)
	out.Calls = maps.Clone(c.Calls)
	out.Actions = maps.Clone(c.Actions)
	out.ActionsRefused = maps.Clone(c.ActionsRefused)
	return out
}

// Counters is a snapshot of every counter.
type Counters struct {
	// Tenants maps tenant ID to its counters (partner-only tenants included).
	Tenants map[string]TenantCounters `json:"tenants"`
	// Calls counts every request per route across tenants, including those whose tenant
	// could not be told (bad tokens, unknown hosts).
	Calls map[string]int `json:"calls"`
}

// Counters returns a snapshot of all counters.
func (c *Cloud) Counters() Counters {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := Counters{Tenants: map[string]TenantCounters{}, Calls: maps.Clone(c.calls)}
	for id, t := range c.tenants {
		out.Tenants[id] = t.counters.clone()
	}
	return out
}

// TenantCounters returns a snapshot of one tenant's counters (zero if unknown).
func (c *Cloud) TenantCounters(tenantID string) TenantCounters {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.tenantByID(tenantID); t != nil {
		return t.counters.clone()
	}
	return newTenantCounters().clone()
}
