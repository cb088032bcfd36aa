//! A plan to run, printed as text or as one JSON document, whether it is
//! held whole or in parts: a plan in parts is read and printed a part at a
//! time, never held.

use std::io::Write;

use super::report::{self, Listing};
use super::{Error, print_json};
use crate::cost::{Usage, estimate_of_usage};
use crate::sync::SyncPlan;
use crate::sync::execute::PlanToRun;

/// How a plan is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PlanOutput {
    Json,
    Text(Listing),
}

/// The plan, and what it will cost (the JSON `plan --json` prints).
#[derive(serde::Serialize)]
pub(super) struct Priced<'a> {
    #[serde(flatten)]
    pub plan: &'a SyncPlan,
    pub cost: Option<crate::cost::CostEstimate>,
}

/// Prints `plan`. `counted`: what its items cost, where a pass over them
/// already counted it (a plan in parts printed without its items is then
/// not read again).
pub(super) async fn print_plan_to_run(
    plan: &PlanToRun,
    output: PlanOutput,
    counted: Option<Usage>,
) -> Result<(), Error> {
    let (head, parts) = match plan {
        PlanToRun::InMemory(plan) => {
            return match output {
                PlanOutput::Json => print_json(&Priced {
                    plan,
                    cost: crate::cost::estimate(plan),
                }),
                PlanOutput::Text(listing) => {
                    print_text(|out| report::write_plan_text(out, plan, listing))
                }
            };
        }
        PlanToRun::InParts { head, parts, .. } => (head, parts),
    };
    match output {
        PlanOutput::Text(listing) => {
            print_text(|out| report::write_plan_head(out, head))?;
            let usage = match counted {
                Some(usage) if listing == Listing::None => usage,
                _ => {
                    let mut usage = Usage::default();
                    for n in 0..parts.count() {
                        let items = parts.read(n).await?;
                        print_text(|out| report::write_plan_items(out, &items, listing))?;
                        if let Some(model) = &head.cost_model {
                            for item in &items {
                                usage.add(head, model, &item.facts());
                            }
                        }
                    }
                    usage
                }
            };
            print_text(|out| report::write_plan_tail(out, head, estimate_of_usage(head, usage)))
        }
        PlanOutput::Json => {
            // One document, its items streamed first: the cost after them
            // is what they add up to.
            print_text(|out| out.write_all(b"{\"items\":["))?;
            let mut usage = Usage::default();
            let mut first = true;
            for n in 0..parts.count() {
                let items = parts.read(n).await?;
                print_text(|out| {
                    for item in &items {
                        if !std::mem::take(&mut first) {
                            out.write_all(b",\n")?;
                        }
                        serde_json::to_writer(&mut *out, item)?;
                    }
                    Ok(())
                })?;
                if let Some(model) = &head.cost_model {
                    for item in &items {
                        usage.add(head, model, &item.facts());
                    }
                }
            }
            let rest = serde_json::to_value(Priced {
                plan: head,
                cost: estimate_of_usage(head, usage),
            })
            .map_err(|e| Error::Output(e.into()))?;
            print_text(|out| {
                out.write_all(b"]")?;
                if let serde_json::Value::Object(fields) = rest {
                    for (name, value) in fields.iter().filter(|(name, _)| *name != "items") {
                        write!(out, ",\n{}:", serde_json::Value::String(name.clone()))?;
                        serde_json::to_writer(&mut *out, value)?;
                    }
                }
                out.write_all(b"}\n")
            })
        }
    }
}

/// Writes to standard output through a buffer, flushed at the end.
fn print_text(
    write: impl FnOnce(&mut std::io::BufWriter<std::io::StdoutLock<'static>>) -> std::io::Result<()>,
) -> Result<(), Error> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    write(&mut out)
        .and_then(|()| out.flush())
        .map_err(Error::Output)
}
