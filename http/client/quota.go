package client

import (
	"context"
	"net/http"
)

// Quota is one subject's limits: what its functions may hold in the core.
type Quota struct {
	Functions            int64 `json:"functions"`
	CodeBytes            int64 `json:"code_bytes"`
	CronTriggers         int64 `json:"cron_triggers"`
	MinCronPeriodSeconds int64 `json:"min_cron_period_seconds"`
	SinksPerFunction     int64 `json:"sinks_per_function"`
	Sinks                int64 `json:"sinks"`
	QueuedBytes          int64 `json:"queued_bytes"`
	RecordsBytes         int64 `json:"records_bytes"`
}

// QuotaUsage is what a subject's functions hold against its quota.
type QuotaUsage struct {
	Functions           int64 `json:"functions"`
	CodeBytes           int64 `json:"code_bytes"`
	CronTriggers        int64 `json:"cron_triggers"`
	Sinks               int64 `json:"sinks"`
	MaxSinksPerFunction int64 `json:"max_sinks_per_function"`
}

// SubjectQuota is a subject's quota, whether it is the default, whether
// the subject is exempt (an admin), and its usage.
type SubjectQuota struct {
	Subject string     `json:"subject"`
	Quota   Quota      `json:"quota"`
	Default bool       `json:"default"`
	Exempt  bool       `json:"exempt"`
	Usage   QuotaUsage `json:"usage"`
}

// QuotaChange is a PUT of a subject's quota: a nil field keeps the value
// in force.
type QuotaChange struct {
	Functions            *int64 `json:"functions,omitempty"`
	CodeBytes            *int64 `json:"code_bytes,omitempty"`
	CronTriggers         *int64 `json:"cron_triggers,omitempty"`
	MinCronPeriodSeconds *int64 `json:"min_cron_period_seconds,omitempty"`
	SinksPerFunction     *int64 `json:"sinks_per_function,omitempty"`
	Sinks                *int64 `json:"sinks,omitempty"`
	QueuedBytes          *int64 `json:"queued_bytes,omitempty"`
	RecordsBytes         *int64 `json:"records_bytes,omitempty"`
}

// SubjectQuota returns a subject's quota and usage.
func (c *Client) SubjectQuota(ctx context.Context, name string) (SubjectQuota, error) {
	return do[SubjectQuota](ctx, c, http.MethodGet, pathOf("v1", "admin", "subjects", name, "quota"), nil)
}

// SetSubjectQuota changes a subject's quota.
func (c *Client) SetSubjectQuota(ctx context.Context, name string, q QuotaChange) (SubjectQuota, error) {
	return do[SubjectQuota](ctx, c, http.MethodPut, pathOf("v1", "admin", "subjects", name, "quota"), q)
}

// ClearSubjectQuota removes a subject's quota (the default applies again).
func (c *Client) ClearSubjectQuota(ctx context.Context, name string) error {
	return c.callJSON(ctx, http.MethodDelete, pathOf("v1", "admin", "subjects", name, "quota"), nil, nil)
}
