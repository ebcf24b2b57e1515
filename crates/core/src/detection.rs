//! Detection metrics (IoU matching, AP@IoU, the F1-optimal score threshold), shared by
//! training-time validation and sub-task scoring.

use crate::BBox;

/// Intersection over union of two pixel boxes (0 when either is empty).
pub fn iou(a: &BBox, b: &BBox) -> f32 {
    let ix = (a.x1.min(b.x1) - a.x0.max(b.x0)).max(0.0);
    let iy = (a.y1.min(b.y1) - a.y0.max(b.y0)).max(0.0);
    let inter = ix * iy;
    let union = a.area() + b.area() - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Marks each prediction of one image/query as a true positive or not: predictions in
/// descending score order each take the unmatched ground-truth box of highest IoU ≥ `thr`.
pub fn match_detections(preds: &[(f32, BBox)], gts: &[BBox], thr: f32) -> Vec<(f32, bool)> {
    let mut order: Vec<usize> = (0..preds.len()).collect();
    order.sort_by(|&a, &b| preds[b].0.total_cmp(&preds[a].0));
    let mut used = vec![false; gts.len()];
    let mut out = Vec::with_capacity(preds.len());
    for i in order {
        let (score, b) = &preds[i];
        let best = gts
            .iter()
            .enumerate()
            .filter(|(j, _)| !used[*j])
            .map(|(j, g)| (j, iou(b, g)))
            .filter(|(_, v)| *v >= thr)
            .max_by(|x, y| x.1.total_cmp(&y.1));
        match best {
            Some((j, _)) => {
                used[j] = true;
                out.push((*score, true));
            }
            None => out.push((*score, false)),
        }
    }
    out
}

/// Average precision (area under the interpolated precision–recall curve, all points, as
/// VOC 2010+ and COCO's per-threshold AP without the 101-point sampling) of scored
/// predictions pooled over images, against `n_gt` ground-truth boxes. 1.0 when there is
/// nothing to find and nothing was predicted; 0.0 when there is nothing to find but
/// something was predicted.
pub fn average_precision(scored: &mut [(f32, bool)], n_gt: usize) -> f64 {
    if n_gt == 0 {
        return if scored.is_empty() { 1.0 } else { 0.0 };
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut tp = 0usize;
    let mut points: Vec<(f64, f64)> = Vec::with_capacity(scored.len());
    for (k, (_, hit)) in scored.iter().enumerate() {
        if *hit {
            tp += 1;
        }
        points.push((tp as f64 / n_gt as f64, tp as f64 / (k + 1) as f64));
    }
    // Precision envelope from the right, then sum precision over recall steps.
    let mut ap = 0.0;
    let mut best_p = 0.0f64;
    let mut prev_r = 0.0;
    let mut env = vec![0.0; points.len()];
    for i in (0..points.len()).rev() {
        best_p = best_p.max(points[i].1);
        env[i] = best_p;
    }
    for (i, (r, _)) in points.iter().enumerate() {
        if *r > prev_r {
            ap += (r - prev_r) * env[i];
            prev_r = *r;
        }
    }
    ap
}

/// The score threshold with the best F1 over pooled scored predictions (`n_gt` boxes to
/// find), and that F1: the detector's operating point for COUNT and `exists`.
pub fn best_f1_threshold(scored: &mut [(f32, bool)], n_gt: usize) -> (f32, f64) {
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut best_t, mut best_f1) = (0.5f32, 0.0f64);
    let mut tp = 0usize;
    for (k, (score, hit)) in scored.iter().enumerate() {
        if *hit {
            tp += 1;
        }
        // Keeping predictions with score >= this one; ties cut at the last of them.
        if scored.get(k + 1).is_some_and(|n| n.0 == *score) {
            continue;
        }
        // 2PR / (P + R) written as one division of integers: equal F1s are equal floats.
        let f1 = (2 * tp) as f64 / (k + 1 + n_gt.max(1)) as f64;
        if f1 > best_f1 {
            best_f1 = f1;
            // Halfway to the next score, so the kept set is the same under small noise.
            let next = scored.get(k + 1).map_or(0.0, |n| n.0);
            best_t = (score + next) / 2.0;
        }
    }
    (best_t, best_f1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ap_of_perfect_half_and_empty_rankings() {
        let mut perfect = vec![(0.9, true), (0.8, true)];
        assert!((average_precision(&mut perfect, 2) - 1.0).abs() < 1e-12);
        // One hit ranked after one miss, one box never found: recall 0.5 at precision 0.5.
        let mut half = vec![(0.9, false), (0.8, true)];
        assert!((average_precision(&mut half, 2) - 0.25).abs() < 1e-12);
        let mut none: Vec<(f32, bool)> = vec![];
        assert_eq!(average_precision(&mut none, 3), 0.0);
    }

    #[test]
    fn matching_takes_each_ground_truth_once() {
        let g = BBox::new(0.0, 0.0, 10.0, 10.0);
        let preds = vec![(0.5, g), (0.9, BBox::new(1.0, 1.0, 10.0, 10.0))];
        let m = match_detections(&preds, &[g], 0.5);
        assert_eq!(m, vec![(0.9, true), (0.5, false)]);
    }
}
