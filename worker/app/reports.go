package app

// ReportsConfig says where fleets write their final reports (JSON and CSV) when they end.
type ReportsConfig struct {
	// Dir is a folder the worker can write (compose: the reports volume). Empty: no reports.
	Dir string `yaml:"dir,omitempty"`
}
