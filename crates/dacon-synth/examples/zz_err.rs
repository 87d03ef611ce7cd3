use dacon_core::classic::ClassicEngine;
use dacon_core::dataset::{Clip, Need};
use dacon_core::eval::{run_task, truth_table};
use dacon_core::protocol::{Limit, Protocol};
use dacon_core::LineOptions;
fn main() {
    let dir = std::env::args().nth(1).unwrap();
    let kf = std::env::args().nth(2).is_some();
    let clip = Clip::open(std::path::Path::new(&dir), Need::Evaluation).unwrap();
    let p = if kf {
        Protocol::keyframe(Limit::Max)
    } else {
        Protocol::consecutive(Limit::Max)
    };
    let engine = ClassicEngine::default();
    for task in p.tasks(&clip) {
        let run = run_task(&engine, &clip, &task, &LineOptions::default()).unwrap();
        let truth = truth_table(&clip, task.target).unwrap();
        let sizes = run.seg.pixel_counts();
        let mut border = vec![false; run.seg.count() as usize + 1];
        let (w, h) = (run.seg.width() as usize, run.seg.height() as usize);
        for (i, &l) in run.seg.labels().iter().enumerate() {
            let (x, y) = (i % w, i / w);
            if x == 0 || y == 0 || x + 1 == w || y + 1 == h {
                border[l as usize] = true;
            }
        }
        for l in 1..=run.seg.count() {
            let (t, pr) = (truth.get(l).unwrap(), run.prediction.colors.get(l).unwrap());
            if t != pr && sizes[l as usize] > 10 {
                let c = &run.prediction.confidence[l as usize - 1];
                println!(
                    "f{} l{} area {} border {} truth {:?} pred {:?} sim {:.2} margin {:.2}",
                    task.target,
                    l,
                    sizes[l as usize],
                    border[l as usize],
                    &t[..3],
                    &pr[..3],
                    c.similarity,
                    c.margin
                );
            }
        }
    }
}
