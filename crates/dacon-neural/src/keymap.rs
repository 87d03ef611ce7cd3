//! The official names of our modules' parameters, and moving weights between
//! a [`WeightMap`] and a module built by its config.
//!
//! burn's module tree already names every parameter by its field path
//! (`unet.final_conv.weight`); `RENAMES` is the one table of where that
//! path differs from the PyTorch checkpoints (torch-hub DINOv2, DACoN), and
//! linear weights are transposed (burn keeps `[in, out]`, PyTorch
//! `[out, in]`). Loading walks the module with a [`ModuleMapper`] and puts
//! each tensor, checked against the shape the config gave, into its
//! parameter; saving and gradient reading walk it with a [`ModuleVisitor`].

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Device, Gradients, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::weights::{RawTensor, Values, WeightMap};

/// `(field, struct or enum holding it, official name)`: the field paths that
/// the checkpoints spell otherwise. An empty name leaves the level out.
const RENAMES: &[(&str, &str, &str)] = &[
    // burn's LayerNorm names PyTorch's `weight` and `bias` gamma and beta.
    ("gamma", "Struct:LayerNorm", "weight"),
    ("beta", "Struct:LayerNorm", "bias"),
    // The official U-Net blocks are `nn.Sequential`s of conv, norm and ReLU:
    // the convolutions are entries 0 and 3, the upsampling one entry 1.
    ("first", "Struct:ConvBlock", "conv.0"),
    ("second", "Struct:ConvBlock", "conv.3"),
    ("conv", "Struct:UpConv", "up.1"),
    // DINOv2's `mlp` is either kind of feed-forward under one name.
    ("Gelu", "Enum:FeedForward", ""),
    ("SwiGlu", "Enum:FeedForward", ""),
];

/// The official name of the parameter being walked.
#[derive(Debug, Default)]
struct Path {
    /// Official name of each level, and whether it is a linear weight.
    levels: Vec<(String, bool)>,
}

impl Path {
    fn enter(&mut self, name: &str, container: &str) {
        let official = RENAMES
            .iter()
            .find(|(field, holder, _)| *field == name && *holder == container)
            .map_or(name, |(_, _, official)| official);
        let linear_weight = container == "Struct:Linear" && name == "weight";
        self.levels.push((official.to_string(), linear_weight));
    }

    fn exit(&mut self) {
        self.levels.pop();
    }

    fn key(&self) -> String {
        let parts: Vec<&str> = self
            .levels
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| !name.is_empty())
            .collect();
        parts.join(".")
    }

    /// Whether the current parameter is stored transposed in PyTorch.
    fn transposed(&self) -> bool {
        self.levels.last().is_some_and(|(_, linear)| *linear)
    }
}

/// The official layout of a parameter's value: linear weights transposed.
fn official<const D: usize>(t: Tensor<D>, transposed: bool) -> Tensor<D> {
    if transposed {
        t.transpose()
    } else {
        t
    }
}

/// A trainable parameter of `values` in the official layout and `shape`,
/// as burn holds it, on `device`.
fn param<const D: usize>(
    values: Vec<f32>,
    shape: Vec<usize>,
    transposed: bool,
    device: &Device,
) -> Param<Tensor<D>> {
    let t = Tensor::from_data(TensorData::new(values, shape), device);
    Param::from_tensor(official(t, transposed))
}

struct Loader<'a> {
    weights: &'a mut WeightMap,
    path: Path,
    error: Option<Error>,
}

impl ModuleMapper for Loader<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if self.error.is_some() {
            return p;
        }
        let transposed = self.path.transposed();
        let mut shape = p.lazy_shape().to_vec();
        if transposed {
            shape.reverse();
        }
        match self.weights.take(&self.path.key(), &shape) {
            Ok(values) => param(values, shape, transposed, &p.lazy_device()),
            Err(e) => {
                self.error = Some(e);
                p
            }
        }
    }
}

/// `module` with every parameter taken from `weights` under its official
/// name; tensors the module has no place for stay in `weights`.
///
/// The module comes from its config's `init`, so its parameters are still
/// lazy: none is allocated before its tensor replaces it.
///
/// # Errors
/// [`Error::MissingKey`] or [`Error::Shape`] naming the file and the full key
/// of the first parameter that is absent or of another shape than the
/// config gives.
pub fn load_into<M: Module>(module: M, weights: &mut WeightMap) -> Result<M> {
    let mut loader = Loader {
        weights,
        path: Path::default(),
        error: None,
    };
    let module = module.map(&mut loader);
    match loader.error {
        Some(e) => Err(e),
        None => Ok(module),
    }
}

/// Calls `each(official name, parameter in the official layout)`.
struct Walk<F> {
    path: Path,
    each: F,
}

impl<F: FnMut(String, RawTensor)> ModuleVisitor for Walk<F> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        let t = official(p.val().detach(), self.path.transposed());
        let shape = t.dims().to_vec();
        (self.each)(
            self.path.key(),
            RawTensor {
                shape,
                data: t.values(),
            },
        );
    }
}

/// Every parameter of `module` in the official layout, in module order.
pub fn for_each_param<M: Module>(module: &M, each: impl FnMut(String, RawTensor)) {
    module.visit(&mut Walk {
        path: Path::default(),
        each,
    });
}

/// The parameters of `module` under their official names: the inverse of
/// [`load_into`], for saving a module (`origin` names it in errors).
pub fn to_weights<M: Module>(module: &M, origin: &str) -> WeightMap {
    let mut tensors = BTreeMap::new();
    for_each_param(module, |name, t| {
        tensors.insert(name, t);
    });
    WeightMap::from_tensors(origin, tensors)
}

struct Grads<'a, F> {
    path: Path,
    grads: &'a Gradients,
    each: F,
}

impl<F: FnMut(String, Vec<f32>)> ModuleVisitor for Grads<'_, F> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        if let Some(g) = p.val().grad(self.grads) {
            (self.each)(
                self.path.key(),
                official(g, self.path.transposed()).values(),
            );
        }
    }
}

/// The gradient of every parameter of `module` that `grads` reaches, by
/// official name, in the official layout.
pub fn gradients<M: Module>(module: &M, grads: &Gradients) -> BTreeMap<String, Vec<f32>> {
    let mut out = BTreeMap::new();
    module.visit(&mut Grads {
        path: Path::default(),
        grads,
        each: |name, g| {
            out.insert(name, g);
        },
    });
    out
}

/// An update of parameter values from their gradients, in the official
/// layout: `(official name, values, gradient)`.
pub trait Update {
    /// Changes `values` of the parameter `name` given its `grad`.
    fn update(&mut self, name: &str, values: &mut [f32], grad: &[f32]);
}

struct Step<'a, U> {
    path: Path,
    grads: &'a Gradients,
    update: &'a mut U,
    device: &'a Device,
}

impl<U: Update> ModuleMapper for Step<'_, U> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let value = p.val();
        let Some(g) = value.grad(self.grads) else {
            return p; // a parameter the loss does not reach
        };
        let transposed = self.path.transposed();
        let value = official(value.detach(), transposed);
        let shape = value.dims().to_vec();
        let mut values = value.values();
        let grad = official(g, transposed).values();
        self.update.update(&self.path.key(), &mut values, &grad);
        param(values, shape, transposed, self.device)
    }
}

/// `module` with each parameter that `grads` reaches replaced by what
/// `update` makes of it, as a trainable parameter on `device`.
pub fn step<M: Module, U: Update>(
    module: M,
    grads: &Gradients,
    update: &mut U,
    device: &Device,
) -> M {
    module.map(&mut Step {
        path: Path::default(),
        grads,
        update,
        device,
    })
}

struct Initialize;

impl ModuleVisitor for Initialize {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        let _ = p.val();
    }
}

/// Creates the parameters of `module` that are still lazy (as a config's
/// `init` leaves them), so that the first forward pass does not pay for it.
pub fn initialize<M: Module>(module: &M) {
    module.visit(&mut Initialize);
}
