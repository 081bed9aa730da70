//! The `terraform/` tree read with hcl-rs, for tests that must run where neither terraform (with
//! its providers) nor checkov is available.
//!
//! # Layout
//! - this file: [`Tree`] (every module's parsed files) and lookups on HCL bodies and expressions.
//! - [`references`]: the reference check behind [`Tree::reference_problems`].
//!
//! [`Tree::load`] parses every `.tf` file and groups them by directory, one Terraform module
//! each. The lookups ([`Tree::resources`], [`attr`], [`child`], [`number`], …) see only what is
//! written: `var.x` stays a traversal, which is why the deployment keeps its hard invariants as
//! literals inside the modules. [`Tree::reference_problems`] stands in for the part of
//! `terraform validate` that needs no provider schema: every `var.`, `local.`, `module.`,
//! `data.` and resource reference resolves, every module call passes exactly the variables its
//! module declares (all required ones included), and every `templatefile()` template uses only
//! the variables it is given.

pub mod references;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use hcl::expr::{Expression, Operation, TraversalOperator};
use hcl::{Block, BlockLabel, Body};

pub use crate::binary::workspace_root;

/// One parsed `.tf` file.
#[derive(Debug)]
pub struct TfFile {
    /// Path relative to `terraform/`.
    pub path: PathBuf,
    /// The parsed body.
    pub body: Body,
}

/// The `.tf` files of one directory: one Terraform module.
#[derive(Debug, Default)]
pub struct Module {
    /// The module's files.
    pub files: Vec<TfFile>,
}

impl Module {
    /// Top-level blocks of this module with the given identifier (`resource`, `variable`, …).
    pub fn blocks<'a>(&'a self, identifier: &'a str) -> impl Iterator<Item = &'a Block> + 'a {
        self.files
            .iter()
            .flat_map(|file| file.body.blocks())
            .filter(move |block| block.identifier() == identifier)
    }

    /// The top-level block `identifier "label0" ["label1"]`, if any.
    pub fn block<'a>(&'a self, identifier: &'a str, labels: &[&str]) -> Option<&'a Block> {
        self.blocks(identifier).find(|block| {
            block.labels().len() == labels.len()
                && block
                    .labels()
                    .iter()
                    .zip(labels)
                    .all(|(label, wanted)| label.as_str() == *wanted)
        })
    }
}

/// A resource (or other block) found somewhere in the tree.
#[derive(Debug, Clone, Copy)]
pub struct Found<'a> {
    /// The module directory, relative to `terraform/` (`.` for the root module).
    pub module: &'a Path,
    /// The block.
    pub block: &'a Block,
}

impl Found<'_> {
    /// `module/type.name`, for messages.
    pub fn describe(&self) -> String {
        let labels: Vec<&str> = self.block.labels().iter().map(BlockLabel::as_str).collect();
        format!("terraform/{}: {}", self.module.display(), labels.join("."))
    }

    /// The block's last label (a resource's name).
    pub fn name(&self) -> &str {
        self.block
            .labels()
            .last()
            .map(BlockLabel::as_str)
            .unwrap_or_default()
    }

    /// The block body.
    pub fn body(&self) -> &Body {
        self.block.body()
    }
}

/// Every module under `terraform/`.
#[derive(Debug)]
pub struct Tree {
    /// The `terraform/` directory.
    pub root: PathBuf,
    /// Modules by directory relative to `terraform/` (`.` is the root module).
    pub modules: BTreeMap<PathBuf, Module>,
}

impl Tree {
    /// Parses every `.tf` file under `terraform/` (skipping `.terraform/` caches); `Err` lists
    /// every file that does not parse.
    pub fn load() -> Result<Tree, String> {
        let root = workspace_root().join("terraform");
        let mut paths = Vec::new();
        collect_tf_files(&root, &mut paths)
            .map_err(|error| format!("reading {root:?}: {error}"))?;
        paths.sort();
        let mut modules: BTreeMap<PathBuf, Module> = BTreeMap::new();
        let mut errors = Vec::new();
        for path in paths {
            let relative = path
                .strip_prefix(&root)
                .expect("collected paths are under the root")
                .to_path_buf();
            let source = match fs::read_to_string(&path) {
                Ok(source) => source,
                Err(error) => {
                    errors.push(format!("{}: {error}", path.display()));
                    continue;
                }
            };
            match hcl::parse(&source) {
                Ok(body) => {
                    let dir = relative
                        .parent()
                        .filter(|parent| !parent.as_os_str().is_empty())
                        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
                    modules.entry(dir).or_default().files.push(TfFile {
                        path: relative,
                        body,
                    });
                }
                Err(error) => errors.push(format!("terraform/{}: {error}", relative.display())),
            }
        }
        if errors.is_empty() {
            Ok(Tree { root, modules })
        } else {
            Err(errors.join("\n"))
        }
    }

    /// The module in `dir` (relative to `terraform/`).
    pub fn module(&self, dir: &str) -> &Module {
        self.modules
            .get(Path::new(dir))
            .unwrap_or_else(|| panic!("terraform/{dir} is not a module with .tf files"))
    }

    /// Every `resource "<kind>" "…"` in the tree.
    pub fn resources(&self, kind: &str) -> Vec<Found<'_>> {
        self.top_level("resource", kind)
    }

    /// Every top-level block `identifier "<first_label>" …` in the tree.
    pub fn top_level<'a>(&'a self, identifier: &'a str, first_label: &str) -> Vec<Found<'a>> {
        self.modules
            .iter()
            .flat_map(|(dir, module)| {
                module
                    .blocks(identifier)
                    .filter(|block| {
                        block.labels().first().map(BlockLabel::as_str) == Some(first_label)
                    })
                    .map(move |block| Found {
                        module: dir.as_path(),
                        block,
                    })
            })
            .collect()
    }

    /// Every reference that does not resolve, every mismatched module call and every template
    /// variable that is not passed, one message each.
    pub fn reference_problems(&self) -> Vec<String> {
        references::problems(self)
    }
}

fn collect_tf_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|name| name != ".terraform") {
                collect_tf_files(&path, out)?;
            }
        } else if path.extension().is_some_and(|extension| extension == "tf") {
            out.push(path);
        }
    }
    Ok(())
}

/// The first attribute `key` of a body.
pub fn attr<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.attributes()
        .find(|attribute| attribute.key() == key)
        .map(|attribute| attribute.expr())
}

/// The first nested block `identifier` of a body.
pub fn child<'a>(body: &'a Body, identifier: &str) -> Option<&'a Block> {
    body.blocks().find(|block| block.identifier() == identifier)
}

/// Follows nested blocks, then reads the attribute: `at(body, &["health_check", "path"])`.
pub fn at<'a>(body: &'a Body, path: &[&str]) -> Option<&'a Expression> {
    let (last, blocks) = path.split_last()?;
    let mut current = body;
    for name in blocks {
        current = child(current, name)?.body();
    }
    attr(current, last)
}

/// A literal number (a negative literal is parsed as a negation and read back as one).
pub fn number(expr: &Expression) -> Option<f64> {
    match expr {
        Expression::Number(number) => number.as_f64(),
        Expression::Operation(operation) => match operation.as_ref() {
            Operation::Unary(unary) if unary.operator == hcl::expr::UnaryOperator::Neg => {
                number(&unary.expr).map(|value| -value)
            }
            _ => None,
        },
        _ => None,
    }
}

/// A literal string without interpolation.
pub fn string(expr: &Expression) -> Option<&str> {
    match expr {
        Expression::String(text) => Some(text),
        _ => None,
    }
}

/// A literal boolean.
pub fn boolean(expr: &Expression) -> Option<bool> {
    match expr {
        Expression::Bool(value) => Some(*value),
        _ => None,
    }
}

/// A reference as its dotted names, indexes written `[]`: `aws_instance.hub[].id`.
pub fn reference(expr: &Expression) -> Option<String> {
    let Expression::Traversal(traversal) = expr else {
        return match expr {
            Expression::Variable(variable) => Some(variable.as_str().to_owned()),
            _ => None,
        };
    };
    let Expression::Variable(root) = &traversal.expr else {
        return None;
    };
    let mut text = root.as_str().to_owned();
    for operator in &traversal.operators {
        match operator {
            TraversalOperator::GetAttr(name) => {
                text.push('.');
                text.push_str(name.as_str());
            }
            _ => text.push_str("[]"),
        }
    }
    Some(text)
}

/// An expression printed back as HCL, for matching conditions.
pub fn source(expr: &Expression) -> String {
    hcl::format::to_string(expr).unwrap_or_else(|error| format!("<unprintable: {error}>"))
}
