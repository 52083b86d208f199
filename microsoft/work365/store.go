package work365

import (
	"context"
	"fmt"

	"github.com/csp-ops/work365-upgrade/microsoft/dataverse"
	"github.com/csp-ops/work365-upgrade/microsoft/msapi"
)

// Rows is what the Store needs of Dataverse; *dataverse.Client has it.
type Rows interface {
	// Count counts rows of entitySet matching filter.
	Count(ctx context.Context, orgURL, entitySet, idColumn, filter string) (int, error)
	// ListRows lists rows of entitySet.
	ListRows(ctx context.Context, orgURL, entitySet string, q dataverse.RowQuery) ([]dataverse.Row, error)
	// PatchRow updates columns of an existing row.
	PatchRow(ctx context.Context, orgURL, entitySet, id string, columns any) error
}

// Store reads and writes the Work 365 data that lives in Dataverse: background jobs and the
// activity freeze setting. It implements activities.Work365; failures are *msapi.Error.
type Store struct {
	rows  Rows
	names Names
}

// NewStore returns a Store over rows (a *dataverse.Client) with Work 365's table and column
// names.
func NewStore(rows Rows, names Names) *Store {
	return &Store{rows: rows, names: names}
}

// CountPendingJobs counts Work 365 jobs neither failed nor succeeded (PendingJobsFilter on
// JobsEntitySet). Dataverse counts at most 5,000.
func (s *Store) CountPendingJobs(ctx context.Context, orgURL string) (int, error) {
	return s.rows.Count(ctx, orgURL, s.names.JobsEntitySet, s.names.JobsIDColumn, s.names.PendingJobsFilter)
}

// Frozen reads the activity freeze setting: FreezeColumn of the first row of SettingsEntitySet.
func (s *Store) Frozen(ctx context.Context, orgURL string) (bool, error) {
	_, frozen, err := s.settings(ctx, orgURL, "read the activity freeze")
	return frozen, err
}

// SetFrozen writes the activity freeze setting; it writes nothing when the setting already
// has that value.
func (s *Store) SetFrozen(ctx context.Context, orgURL string, frozen bool) error {
	op := fmt.Sprintf("set the activity freeze to %t", frozen)
	id, current, err := s.settings(ctx, orgURL, op)
	if err != nil || current == frozen {
		return err
	}
	return s.rows.PatchRow(ctx, orgURL, s.names.SettingsEntitySet, id, map[string]bool{s.names.FreezeColumn: frozen})
}

// Initialisation is what Work 365's settings record shows of its upgrade initialisation (the
// service account's Begin Upgrade): empty Status when it never ran.
type Initialisation struct {
	Status  string `json:"status,omitempty"`
	Version string `json:"version,omitempty"`
}

// Initialisation reads UpgradeStatusColumn and UpgradeVersionColumn of the settings row.
// https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/query/overview
func (s *Store) Initialisation(ctx context.Context, orgURL string) (Initialisation, error) {
	n := s.names
	rows, err := s.rows.ListRows(ctx, orgURL, n.SettingsEntitySet, dataverse.RowQuery{
		Select: []string{n.SettingsIDColumn, n.UpgradeStatusColumn, n.UpgradeVersionColumn},
		Top:    1,
	})
	if err != nil || len(rows) == 0 {
		return Initialisation{}, err
	}
	status, _ := rows[0].String(n.UpgradeStatusColumn)
	version, _ := rows[0].String(n.UpgradeVersionColumn)
	return Initialisation{Status: status, Version: version}, nil
}

// settings reads the ID and freeze value of the first settings row.
func (s *Store) settings(ctx context.Context, orgURL, op string) (id string, frozen bool, err error) {
	n := s.names
	rows, err := s.rows.ListRows(ctx, orgURL, n.SettingsEntitySet, dataverse.RowQuery{
		Select: []string{n.SettingsIDColumn, n.FreezeColumn},
		Top:    1,
	})
	if err != nil {
		return "", false, err
	}
	if len(rows) == 0 {
		return "", false, msapi.LocalError("dataverse", op+" in "+orgURL,
			fmt.Sprintf("Work 365's settings table %s has no row", n.SettingsEntitySet),
			"open Work 365's settings page once so it creates its settings row, or check settingsEntitySet in the Work 365 names")
	}
	id, ok := rows[0].String(n.SettingsIDColumn)
	if !ok || id == "" {
		return "", false, msapi.LocalError("dataverse", op+" in "+orgURL,
			fmt.Sprintf("the settings row of %s has no %s", n.SettingsEntitySet, n.SettingsIDColumn),
			"check settingsIdColumn in the Work 365 names")
	}
	frozen, err = rows[0].Bool(n.FreezeColumn)
	if err != nil {
		return "", false, msapi.LocalError("dataverse", op+" in "+orgURL,
			fmt.Sprintf("the settings row of %s: %v", n.SettingsEntitySet, err),
			"check freezeColumn in the Work 365 names")
	}
	return id, frozen, nil
}
