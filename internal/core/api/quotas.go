package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/core/triggers/eventspec"
)

// Per-subject quotas (admin): what one tenant may keep in the core. The
// store checks the counts inside the write (storage.Store.checkQuota);
// the API checks what needs a parsed schedule (a cron trigger's period)
// and answers a refusal with 403 naming the quota and its value.

type quotaView struct {
	Subject string        `json:"subject"`
	Quota   storage.Quota `json:"quota"`
	// Default is true when no quota is set: the store's default quota applies.
	Default bool `json:"default"`
	// Exempt is true for an admin, whom no quota bounds.
	Exempt bool          `json:"exempt"`
	Usage  storage.Usage `json:"usage"`
}

func (s *Server) quotaView(name string) (quotaView, error) {
	sub, err := s.cfg.Store.GetSubject(name)
	if err != nil {
		return quotaView{}, err
	}
	q, set, err := s.cfg.Store.SubjectQuota(name)
	if err != nil {
		return quotaView{}, err
	}
	u, err := s.cfg.Store.SubjectUsage(name)
	if err != nil {
		return quotaView{}, fmt.Errorf("usage of %q: %w", name, err)
	}
	return quotaView{Subject: name, Quota: q, Default: !set, Exempt: sub.Admin, Usage: u}, nil
}

func (s *Server) getSubjectQuota(c *call) error {
	name := c.ps.ByName("name")
	if err := s.subjectOr404(name); err != nil {
		return err
	}
	v, err := s.quotaView(name)
	if err != nil {
		return err
	}
	return reply(c, http.StatusOK, v)
}

// setSubjectQuota replaces the subject's quota; a field left out keeps
// the value in force (the set quota, else the default).
func (s *Server) setSubjectQuota(c *call) error {
	name := c.ps.ByName("name")
	if err := s.subjectOr404(name); err != nil {
		return err
	}
	var body struct {
		Functions            *int64 `json:"functions"`
		CodeBytes            *int64 `json:"code_bytes"`
		CronTriggers         *int64 `json:"cron_triggers"`
		MinCronPeriodSeconds *int64 `json:"min_cron_period_seconds"`
		SinksPerFunction     *int64 `json:"sinks_per_function"`
		Sinks                *int64 `json:"sinks"`
		QueuedBytes          *int64 `json:"queued_bytes"`
		RecordsBytes         *int64 `json:"records_bytes"`
	}
	if err := readJSON(c, &body, "request body"); err != nil {
		return err
	}
	q, _, err := s.cfg.Store.SubjectQuota(name)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		in  *int64
		out *int64
	}{
		{body.Functions, &q.Functions}, {body.CodeBytes, &q.CodeBytes}, {body.CronTriggers, &q.CronTriggers},
		{body.MinCronPeriodSeconds, &q.MinCronPeriodSeconds}, {body.SinksPerFunction, &q.SinksPerFunction}, {body.Sinks, &q.Sinks},
		{body.QueuedBytes, &q.QueuedBytes}, {body.RecordsBytes, &q.RecordsBytes},
	} {
		if f.in != nil {
			*f.out = *f.in
		}
	}
	if err := q.Check(); err != nil {
		return errorf(http.StatusBadRequest, "Bad Request: %v", err)
	}
	if err := s.writes.SetSubjectQuota(name, q); err != nil {
		return err
	}
	s.log.Info("subject quota set", "subject", name, "quota", q, "by", c.subject.Name)
	v, err := s.quotaView(name)
	if err != nil {
		return err
	}
	return reply(c, http.StatusOK, v)
}

func (s *Server) clearSubjectQuota(c *call) error {
	name := c.ps.ByName("name")
	if err := s.subjectOr404(name); err != nil {
		return err
	}
	if err := s.writes.ClearSubjectQuota(name); err != nil {
		return err
	}
	s.log.Info("subject quota cleared", "subject", name, "by", c.subject.Name)
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// checkCronPeriods refuses a cron trigger that would tick more often than
// the owner's quota allows. Admins are exempt.
func (s *Server) checkCronPeriods(owner string, events []storage.Event) error {
	sub, err := s.cfg.Store.GetSubject(owner)
	if err == nil && sub.Admin {
		return nil
	}
	q, _, err := s.cfg.Store.SubjectQuota(owner)
	if err != nil {
		return err
	}
	least := time.Duration(q.MinCronPeriodSeconds) * time.Second
	for i, ev := range events {
		if ev.Type != storage.EventCron {
			continue
		}
		p, err := eventspec.MinPeriod(ev.Schedule)
		if err != nil {
			return errorf(http.StatusBadRequest, "Bad Request: events[%d].schedule: %v", i, err)
		}
		if p < least {
			return &storage.QuotaError{Subject: owner, Quota: "min_cron_period_seconds", Limit: q.MinCronPeriodSeconds, Would: int64(p / time.Second)}
		}
	}
	return nil
}
