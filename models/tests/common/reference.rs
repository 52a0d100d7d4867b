//! A small, slow, obviously-correct ONNX interpreter for the ops the `models` builders emit, so that tests can
//! check shapes, fold_bn equivalence and fixture semantics without ONNX Runtime. Integers and booleans are held
//! as f32 (exact for the small shape values the fixtures compute).

use std::collections::HashMap;

use converters::ir::attr::NodeExt;
use converters::ir::tensor;
use converters::proto::{GraphProto, ModelProto, NodeProto};

#[derive(Debug, Clone, PartialEq)]
pub struct T {
    pub dims: Vec<usize>,
    pub data: Vec<f32>,
}

impl T {
    pub fn new(dims: &[usize], data: Vec<f32>) -> T {
        assert_eq!(dims.iter().product::<usize>(), data.len(), "dims {dims:?}");
        T {
            dims: dims.to_vec(),
            data,
        }
    }
    fn scalar(v: f32) -> T {
        T::new(&[], vec![v])
    }
}

type Env = HashMap<String, T>;

pub fn run(model: &ModelProto, feeds: &[(&str, T)]) -> Result<Env, String> {
    let g = model.graph.as_ref().ok_or("no graph")?;
    let mut env: Env = feeds.iter().map(|(n, t)| (n.to_string(), t.clone())).collect();
    run_graph(g, &mut env)?;
    let mut out = Env::new();
    for o in &g.output {
        let name = o.name.clone().unwrap_or_default();
        let v = env.get(&name).ok_or(format!("output {name} not computed"))?.clone();
        out.insert(name, v);
    }
    Ok(out)
}

fn run_graph(g: &GraphProto, env: &mut Env) -> Result<(), String> {
    for t in &g.initializer {
        let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
        let data = tensor::to_f32(t, None).map_err(|e| e.to_string())?;
        env.insert(t.name.clone().unwrap_or_default(), T::new(&dims, data));
    }
    for n in &g.node {
        let outs = eval(n, env).map_err(|e| format!("node {} ({}): {e}", n.name_or_output(), n.op()))?;
        for (name, v) in n.output.iter().zip(outs) {
            env.insert(name.clone(), v);
        }
    }
    Ok(())
}

fn ints(n: &NodeProto, name: &str, default: &[i64]) -> Vec<i64> {
    n.get_ints(name).unwrap().unwrap_or_else(|| default.to_vec())
}

fn int(n: &NodeProto, name: &str, default: i64) -> i64 {
    n.get_i(name).unwrap().unwrap_or(default)
}

fn float(n: &NodeProto, name: &str, default: f32) -> f32 {
    n.get_f(name).unwrap().unwrap_or(default)
}

fn eval(n: &NodeProto, env: &Env) -> Result<Vec<T>, String> {
    let input = |i: usize| -> Result<&T, String> {
        let name = n
            .input
            .get(i)
            .filter(|s| !s.is_empty())
            .ok_or(format!("missing input {i}"))?;
        env.get(name).ok_or(format!("value {name} not computed"))
    };
    let opt = |i: usize| n.input.get(i).filter(|s| !s.is_empty()).and_then(|s| env.get(s));
    let map = |x: &T, f: &dyn Fn(f32) -> f32| T::new(&x.dims, x.data.iter().map(|&v| f(v)).collect());
    Ok(vec![match n.op() {
        "Conv" => conv(n, input(0)?, input(1)?, opt(2))?,
        "BatchNormalization" => {
            let (x, g, b, m, v) = (input(0)?, input(1)?, input(2)?, input(3)?, input(4)?);
            let eps = float(n, "epsilon", 1e-5);
            let (c, hw) = (x.dims[1], x.dims[2..].iter().product::<usize>());
            let mut y = x.data.clone();
            for (i, val) in y.iter_mut().enumerate() {
                let ch = (i / hw) % c;
                *val = (*val - m.data[ch]) / (v.data[ch] + eps).sqrt() * g.data[ch] + b.data[ch];
            }
            T::new(&x.dims, y)
        }
        "Relu" => map(input(0)?, &|v| v.max(0.0)),
        "Sigmoid" => map(input(0)?, &|v| 1.0 / (1.0 + (-v).exp())),
        "LeakyRelu" => {
            let a = float(n, "alpha", 0.01);
            map(input(0)?, &|v| if v >= 0.0 { v } else { a * v })
        }
        "Clip" => {
            let lo = opt(1).map(|t| t.data[0]).unwrap_or(f32::MIN);
            let hi = opt(2).map(|t| t.data[0]).unwrap_or(f32::MAX);
            map(input(0)?, &|v| v.clamp(lo, hi))
        }
        "PRelu" => broadcast(input(0)?, input(1)?, |x, s| if x >= 0.0 { x } else { s * x })?,
        "Add" => broadcast(input(0)?, input(1)?, |a, b| a + b)?,
        "Mul" => broadcast(input(0)?, input(1)?, |a, b| a * b)?,
        "Greater" => broadcast(input(0)?, input(1)?, |a, b| (a > b) as i32 as f32)?,
        "Identity" => input(0)?.clone(),
        "Constant" => {
            let t = n.get_t("value").unwrap().ok_or("Constant without value")?;
            let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
            T::new(&dims, tensor::to_f32(t, None).map_err(|e| e.to_string())?)
        }
        "MaxPool" | "AveragePool" => pool(n, input(0)?)?,
        "GlobalAveragePool" => {
            let x = input(0)?;
            let hw: usize = x.dims[2..].iter().product();
            let data = x.data.chunks(hw).map(|c| c.iter().sum::<f32>() / hw as f32).collect();
            T::new(&[x.dims[0], x.dims[1], 1, 1], data)
        }
        "ReduceMean" => {
            if int(n, "keepdims", 1) != 0 || n.attr("axes").is_some() {
                return Err("only full reduction with keepdims=0".into());
            }
            let x = input(0)?;
            T::scalar(x.data.iter().sum::<f32>() / x.data.len() as f32)
        }
        "Flatten" => {
            let x = input(0)?;
            let axis = int(n, "axis", 1) as usize;
            let rows: usize = x.dims[..axis].iter().product();
            T::new(&[rows, x.data.len() / rows.max(1)], x.data.clone())
        }
        "Gemm" => gemm(n, input(0)?, input(1)?, opt(2))?,
        "Concat" => {
            let xs: Vec<&T> = (0..n.input.len()).map(input).collect::<Result<_, _>>()?;
            concat(&xs, axis(int(n, "axis", 0), xs[0].dims.len()))
        }
        "Split" => return split(n, input(0)?, input(1)?),
        "Reshape" => {
            let x = input(0)?;
            let mut dims: Vec<i64> = input(1)?.data.iter().map(|&v| v as i64).collect();
            for (i, d) in dims.iter_mut().enumerate() {
                if *d == 0 {
                    *d = x.dims[i] as i64;
                }
            }
            let known: i64 = dims.iter().filter(|&&d| d != -1).product();
            let dims: Vec<usize> = dims
                .iter()
                .map(|&d| {
                    if d == -1 {
                        x.data.len() / known as usize
                    } else {
                        d as usize
                    }
                })
                .collect();
            if dims.iter().product::<usize>() != x.data.len() {
                return Err(format!("cannot reshape {:?} to {dims:?}", x.dims));
            }
            T::new(&dims, x.data.clone())
        }
        "Transpose" => transpose(input(0)?, &ints(n, "perm", &[])),
        "Shape" => {
            let x = input(0)?;
            T::new(&[x.dims.len()], x.dims.iter().map(|&d| d as f32).collect())
        }
        "Gather" => {
            let (x, idx) = (input(0)?, input(1)?);
            if x.dims.len() != 1 || !idx.dims.is_empty() || int(n, "axis", 0) != 0 {
                return Err("only scalar index into a 1-D tensor".into());
            }
            T::scalar(x.data[idx.data[0] as usize])
        }
        "Unsqueeze" => {
            let x = input(0)?;
            let mut dims = x.dims.clone();
            let mut axes: Vec<i64> = input(1)?.data.iter().map(|&v| v as i64).collect();
            axes.sort();
            for a in axes {
                dims.insert(axis(a, dims.len() + 1), 1);
            }
            T::new(&dims, x.data.clone())
        }
        "If" => {
            let branch = if input(0)?.data[0] != 0.0 {
                "then_branch"
            } else {
                "else_branch"
            };
            let g = n.attr(branch).and_then(|a| a.g.as_ref()).ok_or("If without branch")?;
            let mut inner = env.clone();
            run_graph(g, &mut inner)?;
            let out = g.output[0].name.as_deref().unwrap_or("");
            inner.remove(out).ok_or("branch output not computed")?
        }
        other => return Err(format!("op {other} not supported by the reference interpreter")),
    }])
}

fn axis(a: i64, rank: usize) -> usize {
    if a < 0 { (a + rank as i64) as usize } else { a as usize }
}

fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

fn broadcast(a: &T, b: &T, f: impl Fn(f32, f32) -> f32) -> Result<T, String> {
    let rank = a.dims.len().max(b.dims.len());
    let pad = |d: &[usize]| [vec![1; rank - d.len()], d.to_vec()].concat();
    let (da, db) = (pad(&a.dims), pad(&b.dims));
    let mut dims = Vec::with_capacity(rank);
    for (&x, &y) in da.iter().zip(&db) {
        if x != y && x != 1 && y != 1 {
            return Err(format!("cannot broadcast {:?} with {:?}", a.dims, b.dims));
        }
        dims.push(x.max(y));
    }
    let (sa, sb, so) = (strides(&da), strides(&db), strides(&dims));
    let total: usize = dims.iter().product();
    let mut out = Vec::with_capacity(total);
    for i in 0..total {
        let (mut ia, mut ib) = (0, 0);
        for k in 0..rank {
            let c = (i / so[k]) % dims[k];
            ia += if da[k] == 1 { 0 } else { c * sa[k] };
            ib += if db[k] == 1 { 0 } else { c * sb[k] };
        }
        out.push(f(a.data[ia], b.data[ib]));
    }
    Ok(T::new(&dims, out))
}

fn conv(n: &NodeProto, x: &T, w: &T, b: Option<&T>) -> Result<T, String> {
    if ints(n, "dilations", &[1, 1]) != [1, 1] {
        return Err("dilations other than 1".into());
    }
    let s = ints(n, "strides", &[1, 1]);
    let p = ints(n, "pads", &[0, 0, 0, 0]);
    let g = int(n, "group", 1) as usize;
    let (nb, c, h, wd) = (x.dims[0], x.dims[1], x.dims[2], x.dims[3]);
    let (co, cig, kh, kw) = (w.dims[0], w.dims[1], w.dims[2], w.dims[3]);
    if cig * g != c {
        return Err(format!(
            "weight {:?} does not fit {c} input channels in {g} groups",
            w.dims
        ));
    }
    let ho = (h as i64 + p[0] + p[2] - kh as i64) / s[0] + 1;
    let wo = (wd as i64 + p[1] + p[3] - kw as i64) / s[1] + 1;
    let (ho, wo) = (ho as usize, wo as usize);
    let cog = co / g;
    let mut y = vec![0f32; nb * co * ho * wo];
    for ni in 0..nb {
        for oc in 0..co {
            let grp = oc / cog;
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut acc = b.map(|b| b.data[oc] as f64).unwrap_or(0.0);
                    for ic in 0..cig {
                        let xc = grp * cig + ic;
                        for ky in 0..kh {
                            let iy = (oy as i64) * s[0] - p[0] + ky as i64;
                            if iy < 0 || iy >= h as i64 {
                                continue;
                            }
                            for kx in 0..kw {
                                let ix = (ox as i64) * s[1] - p[1] + kx as i64;
                                if ix < 0 || ix >= wd as i64 {
                                    continue;
                                }
                                let xv = x.data[((ni * c + xc) * h + iy as usize) * wd + ix as usize];
                                let wv = w.data[((oc * cig + ic) * kh + ky) * kw + kx];
                                acc += xv as f64 * wv as f64;
                            }
                        }
                    }
                    y[((ni * co + oc) * ho + oy) * wo + ox] = acc as f32;
                }
            }
        }
    }
    Ok(T::new(&[nb, co, ho, wo], y))
}

fn pool(n: &NodeProto, x: &T) -> Result<T, String> {
    let k = ints(n, "kernel_shape", &[]);
    let s = ints(n, "strides", &[1, 1]);
    let p = ints(n, "pads", &[0, 0, 0, 0]);
    if int(n, "ceil_mode", 0) != 0 {
        return Err("ceil_mode".into());
    }
    let is_max = n.op() == "MaxPool";
    let (nb, c, h, w) = (x.dims[0], x.dims[1], x.dims[2], x.dims[3]);
    let ho = ((h as i64 + p[0] + p[2] - k[0]) / s[0] + 1) as usize;
    let wo = ((w as i64 + p[1] + p[3] - k[1]) / s[1] + 1) as usize;
    let mut y = Vec::with_capacity(nb * c * ho * wo);
    for plane in x.data.chunks(h * w) {
        for oy in 0..ho {
            for ox in 0..wo {
                let (mut best, mut sum, mut cnt) = (f32::NEG_INFINITY, 0f32, 0);
                for ky in 0..k[0] {
                    for kx in 0..k[1] {
                        let iy = oy as i64 * s[0] - p[0] + ky;
                        let ix = ox as i64 * s[1] - p[1] + kx;
                        if iy < 0 || ix < 0 || iy >= h as i64 || ix >= w as i64 {
                            continue;
                        }
                        let v = plane[iy as usize * w + ix as usize];
                        best = best.max(v);
                        sum += v;
                        cnt += 1;
                    }
                }
                y.push(if is_max { best } else { sum / cnt as f32 });
            }
        }
    }
    Ok(T::new(&[nb, c, ho, wo], y))
}

fn gemm(n: &NodeProto, a: &T, b: &T, c: Option<&T>) -> Result<T, String> {
    if int(n, "transA", 0) != 0 {
        return Err("transA".into());
    }
    let tb = int(n, "transB", 0) != 0;
    let (alpha, beta) = (float(n, "alpha", 1.0), float(n, "beta", 1.0));
    let (m, k) = (a.dims[0], a.dims[1]);
    let nn = if tb { b.dims[0] } else { b.dims[1] };
    let kb = if tb { b.dims[1] } else { b.dims[0] };
    if k != kb {
        return Err(format!("Gemm {:?} × {:?} (transB={tb})", a.dims, b.dims));
    }
    let mut y = vec![0f32; m * nn];
    for i in 0..m {
        for j in 0..nn {
            let mut acc = 0f64;
            for l in 0..k {
                let bv = if tb { b.data[j * k + l] } else { b.data[l * nn + j] };
                acc += a.data[i * k + l] as f64 * bv as f64;
            }
            let cv = c.map(|c| {
                if c.data.len() == nn {
                    c.data[j]
                } else {
                    c.data[i * nn + j]
                }
            });
            y[i * nn + j] = alpha * acc as f32 + beta * cv.unwrap_or(0.0);
        }
    }
    Ok(T::new(&[m, nn], y))
}

fn concat(xs: &[&T], ax: usize) -> T {
    let outer: usize = xs[0].dims[..ax].iter().product();
    let mut dims = xs[0].dims.clone();
    dims[ax] = xs.iter().map(|x| x.dims[ax]).sum();
    let mut data = Vec::with_capacity(dims.iter().product());
    for o in 0..outer {
        for x in xs {
            let inner: usize = x.dims[ax..].iter().product();
            data.extend_from_slice(&x.data[o * inner..(o + 1) * inner]);
        }
    }
    T::new(&dims, data)
}

fn split(n: &NodeProto, x: &T, sizes: &T) -> Result<Vec<T>, String> {
    let ax = axis(int(n, "axis", 0), x.dims.len());
    let outer: usize = x.dims[..ax].iter().product();
    let inner: usize = x.dims[ax + 1..].iter().product();
    let mut start = 0;
    let mut outs = Vec::new();
    for &sz in &sizes.data {
        let sz = sz as usize;
        let mut dims = x.dims.clone();
        dims[ax] = sz;
        let mut data = Vec::new();
        for o in 0..outer {
            let base = o * x.dims[ax] * inner;
            data.extend_from_slice(&x.data[base + start * inner..base + (start + sz) * inner]);
        }
        outs.push(T::new(&dims, data));
        start += sz;
    }
    if start != x.dims[ax] {
        return Err(format!(
            "split sizes {:?} do not cover axis of {}",
            sizes.data, x.dims[ax]
        ));
    }
    Ok(outs)
}

fn transpose(x: &T, perm: &[i64]) -> T {
    let dims: Vec<usize> = perm.iter().map(|&p| x.dims[p as usize]).collect();
    let (si, so) = (strides(&x.dims), strides(&dims));
    let mut data = vec![0f32; x.data.len()];
    for (i, v) in data.iter_mut().enumerate() {
        let mut src = 0;
        for (k, &p) in perm.iter().enumerate() {
            src += ((i / so[k]) % dims[k]) * si[p as usize];
        }
        *v = x.data[src];
    }
    T::new(&dims, data)
}
