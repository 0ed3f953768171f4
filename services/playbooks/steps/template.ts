import type { TemplateFormat } from '../templates.js';
import { TemplateCode, renderTemplate } from './liquid.js';
import { textToPdf } from './pdf.js';
import { StepError, type StepRunner } from './types.js';

/**
 * The `template` step: renders Liquid from the library (`{ templateId }`) or inline
 * (`{ source }`) over the step scope.
 *
 * ```yaml
 * template: { source: "{{ steps.unhealthy.output | size }} integrations need attention" }
 * template: { templateId: tpl_..., format: pdf, title: Weekly partner report }
 * ```
 *
 * Output: the rendered text for `text`, `markdown` and `html` (outputs HTML-escaped; `| raw`
 * opts out), so `{{ steps.<id>.output }}` is the message; for `pdf`, a report:
 * `{ contentType: "application/pdf", filename, bytes, base64 }` (at most {@link PDF_MAX_BYTES}).
 * `format` defaults to the library template's, else `text`.
 */

export const PDF_MAX_BYTES = 2 * 1024 * 1024;

/** What the runner needs of the template library. */
export interface TemplateSource {
  get(tenantId: string, id: string): Promise<{ id: string; source: string; format: TemplateFormat; name: string }>;
}

interface TemplateSpec {
  source?: unknown;
  templateId?: unknown;
  format?: unknown;
  title?: unknown;
}

const FORMATS = ['text', 'markdown', 'html', 'pdf'];

export function templateRunner(library: TemplateSource, now: () => number): StepRunner {
  return async (spec, scope, ctx) => {
    const s = (typeof spec === 'string' ? { source: spec } : spec) as TemplateSpec | null;
    if (!s || typeof s !== 'object') throw new StepError(TemplateCode.Invalid, 'template must be { source } or { templateId }', false);
    if ((s.source === undefined) === (s.templateId === undefined)) throw new StepError(TemplateCode.Invalid, 'template needs exactly one of source or templateId', false);
    if (s.format !== undefined && !FORMATS.includes(String(s.format))) throw new StepError(TemplateCode.Invalid, `template.format must be one of ${FORMATS.join(', ')}`, false);
    let source: string;
    let format = s.format as TemplateFormat | undefined;
    let name = 'report';
    if (s.templateId !== undefined) {
      if (typeof s.templateId !== 'string') throw new StepError(TemplateCode.Invalid, 'template.templateId must be a string', false);
      let t;
      try {
        t = await library.get(ctx.tenantId, s.templateId);
      } catch (err) {
        if ((err as { code?: string }).code === 'NOT_FOUND') throw new StepError('TEMPLATE_NOT_FOUND', `template ${s.templateId} not found`, false);
        throw err;
      }
      source = t.source;
      format ??= t.format;
      name = t.name;
    } else {
      if (typeof s.source !== 'string') throw new StepError(TemplateCode.Invalid, 'template.source must be a string', false);
      source = s.source;
    }
    format ??= 'text';
    const text = await renderTemplate(source, scope, { escape: format === 'html' ? 'html' : 'none', signal: ctx.signal });
    ctx.log(`rendered ${format} (${text.length} characters)`, { format, chars: text.length });
    if (format !== 'pdf') return text;
    const title = typeof s.title === 'string' ? s.title : name;
    const pdf = textToPdf(text, { title, createdAt: new Date(now()) });
    if (pdf.length > PDF_MAX_BYTES) throw new StepError(TemplateCode.TooLarge, `the PDF is ${pdf.length} bytes; at most ${PDF_MAX_BYTES} are kept with a step`, false);
    return { contentType: 'application/pdf', filename: `${title.replace(/[^\w.-]+/g, '-').slice(0, 80) || 'report'}.pdf`, bytes: pdf.length, base64: pdf.toString('base64') };
  };
}
