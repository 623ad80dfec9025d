// What GET /v1/projects?forms=true&datasets=true nests in each project (formList, datasetList).
// Empty until forms and datasets exist: their routers replace these loaders at import time, e.g.
//   projectEmbeds.forms = async (db, ids, req) => new Map(…project id → array of extended forms…);
// Each loader runs in the listing's transaction (as the actor) and returns only what the actor may see.
import type { Request } from 'express';
import type { Db } from '../db.ts';

export type ProjectEmbedLoader = (db: Db, projectIds: number[], req: Request) => Promise<Map<number, unknown[]>>;

const nothing: ProjectEmbedLoader = async () => new Map();

export const projectEmbeds: { forms: ProjectEmbedLoader; datasets: ProjectEmbedLoader } = {
  forms: nothing,
  datasets: nothing,
};
