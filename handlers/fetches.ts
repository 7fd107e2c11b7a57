import type { RequestContext } from '../lib/context.js';
import { NotFoundError } from '../lib/errors.js';
import { sendJson } from '../lib/respond.js';
import { assertPublicHost } from '../net/ssrf.js';
import { readFetchRequest } from './fetch-request.js';

/**
 * Background fetch jobs: `POST /fetches` `{"url", "filename"?, "sha256"?}` → 202 with Location;
 * `GET /fetches` (newest first), `GET /fetches/<id>`, `DELETE /fetches/<id>` (cancel a queued or
 * running job: 200; forget a finished one: 204). The work is done by FetchJobs.
 */

export async function handleSubmitFetchJob(ctx: RequestContext): Promise<void> {
  const request = await readFetchRequest(ctx);
  // Checked as POST /fetch would check it (400 above, 403 here), before the job exists.
  await assertPublicHost(request.url, ctx.config.fetchAllow);
  const job = await ctx.fetchJobs.submit(request);
  // RFC 9110 15.3.3: 202 Accepted, the job's own resource in Location to follow its progress.
  sendJson(ctx.res, 202, ctx.fetchJobs.view(job), { location: `/fetches/${job.id}` });
}

export async function handleListFetchJobs(ctx: RequestContext): Promise<void> {
  const jobs = await ctx.fetchJobs.list();
  sendJson(ctx.res, 200, { fetches: jobs.map((j) => ctx.fetchJobs.view(j)) });
}

export async function handleGetFetchJob(ctx: RequestContext): Promise<void> {
  const id = jobId(ctx);
  const job = await ctx.fetchJobs.get(id);
  if (job === null) throw new NotFoundError(`No fetch job ${id}`);
  sendJson(ctx.res, 200, ctx.fetchJobs.view(job));
}

export async function handleDeleteFetchJob(ctx: RequestContext): Promise<void> {
  const cancelled = await ctx.fetchJobs.cancel(jobId(ctx));
  if (cancelled !== null) return sendJson(ctx.res, 200, ctx.fetchJobs.view(cancelled));
  // Forgotten: its file, if any, stays.
  ctx.res.statusCode = 204;
  ctx.res.end();
}

/** `/fetches/<id>`: the id as written (ids are base64url; anything else is simply unknown). */
function jobId(ctx: RequestContext): string {
  return ctx.url.pathname.slice('/fetches/'.length);
}
