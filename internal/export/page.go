package export

// Page sizes of every listing: jobs, webhooks and their deliveries,
// schedules, the audit trail (README, web/openapi.json's Limit).
const (
	defaultPageLimit = 50
	maxPageLimit     = 200
)

// pageLimit is the page size of a listing asked for limit: 0 (not asked)
// takes the default; any other must be 1 to maxPageLimit.
func pageLimit(limit int) (int, error) {
	if limit == 0 {
		return defaultPageLimit, nil
	}
	if limit < 1 || limit > maxPageLimit {
		return 0, Invalid("limit", "must be between 1 and %d", maxPageLimit)
	}
	return limit, nil
}
