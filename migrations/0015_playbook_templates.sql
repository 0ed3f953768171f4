-- The playbook template library (services/playbooks/templates.ts, GET/POST /api/partnerships/templates).
-- A template is Liquid source that `template` steps render by id. Templates are immutable once
-- created: posting the same name again makes the next version (a new id), so an execution that
-- references an id keeps rendering what it started with; `{ templateId }` names one version.
--   tenant_id  the owner: a vendor or partner id, or '' for the platform's library, which every
--              tenant can read and only operators write
--   format     what the rendered text is: text, markdown, html (outputs HTML-escaped), pdf (a report)
CREATE TABLE playbook_templates (
  id          text        PRIMARY KEY,
  tenant_id   text        NOT NULL,
  name        text        NOT NULL,
  version     integer     NOT NULL CHECK (version > 0),
  description text,
  format      text        NOT NULL CHECK (format IN ('text', 'markdown', 'html', 'pdf')),
  source      text        NOT NULL,
  created_by  text        NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, name, version)
);

CREATE INDEX playbook_templates_tenant ON playbook_templates (tenant_id, created_at DESC, id);
