//! The part of `terraform validate` that needs no provider schema: every `var.`, `local.`,
//! `module.`, `data.` and resource reference resolves, every module call passes exactly the
//! variables its module declares (all required ones included), and every `templatefile()`
//! template uses only the variables it is given.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Component, Path, PathBuf};

use hcl::expr::{Expression, ObjectKey, Operation, TraversalOperator};
use hcl::template::{Directive, Element, Template};
use hcl::{Block, BlockLabel, Body};

use super::{Module, Tree, attr, reference, string, workspace_root};

/// Every reference that does not resolve, every mismatched module call and every template
/// variable that is not passed, one message each.
pub fn problems(tree: &Tree) -> Vec<String> {
    let declared: BTreeMap<&Path, Declared> = tree
        .modules
        .iter()
        .map(|(dir, module)| (dir.as_path(), Declared::of(dir, module)))
        .collect();
    let mut problems = Vec::new();
    for (dir, module) in &tree.modules {
        let mut checker = Checker {
            tree,
            declared: &declared,
            here: &declared[dir.as_path()],
            dir,
            problems: &mut problems,
            location: String::new(),
        };
        for file in &module.files {
            for block in file.body.blocks() {
                checker.location = format!(
                    "terraform/{} ({} {})",
                    file.path.display(),
                    block.identifier(),
                    block
                        .labels()
                        .iter()
                        .map(BlockLabel::as_str)
                        .collect::<Vec<_>>()
                        .join(".")
                );
                checker.top_level(block);
            }
        }
    }
    problems
}

/// What one module declares.
#[derive(Debug, Default)]
struct Declared {
    /// Variables, with whether they are required (no default).
    variables: BTreeMap<String, bool>,
    locals: BTreeSet<String>,
    resources: BTreeSet<(String, String)>,
    data: BTreeSet<(String, String)>,
    /// Module calls and the directory (relative to `terraform/`) they resolve to.
    modules: BTreeMap<String, PathBuf>,
    outputs: BTreeSet<String>,
}

impl Declared {
    fn of(dir: &Path, module: &Module) -> Declared {
        let mut declared = Declared::default();
        let label = |block: &Block, index: usize| {
            block
                .labels()
                .get(index)
                .map(|label| label.as_str().to_owned())
                .unwrap_or_default()
        };
        for file in &module.files {
            for block in file.body.blocks() {
                match block.identifier() {
                    "variable" => {
                        let required = attr(block.body(), "default").is_none();
                        declared.variables.insert(label(block, 0), required);
                    }
                    "locals" => {
                        for attribute in block.body().attributes() {
                            declared.locals.insert(attribute.key().to_owned());
                        }
                    }
                    "resource" => {
                        declared
                            .resources
                            .insert((label(block, 0), label(block, 1)));
                    }
                    "data" => {
                        declared.data.insert((label(block, 0), label(block, 1)));
                    }
                    "module" => {
                        let source = attr(block.body(), "source")
                            .and_then(string)
                            .unwrap_or_default();
                        declared
                            .modules
                            .insert(label(block, 0), normalize(&dir.join(source)));
                    }
                    "output" => {
                        declared.outputs.insert(label(block, 0));
                    }
                    _ => {}
                }
            }
        }
        declared
    }
}

/// `a/./b/../c` → `a/c`; `.` for the empty path.
fn normalize(path: &Path) -> PathBuf {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop();
            }
            other => parts.push(other.as_os_str()),
        }
    }
    if parts.is_empty() {
        PathBuf::from(".")
    } else {
        parts.iter().collect()
    }
}

/// Names that are always in scope in a Terraform module.
const BUILTIN_ROOTS: [&str; 5] = ["each", "count", "self", "path", "terraform"];

/// Module-call arguments that are not variables of the called module.
const MODULE_META_ARGUMENTS: [&str; 6] = [
    "source",
    "version",
    "count",
    "for_each",
    "providers",
    "depends_on",
];

/// Where names come from while walking expressions.
enum Names<'a> {
    /// Module code: declarations of the module.
    Module,
    /// A `templatefile()` template: only the variables passed to it.
    Template(&'a BTreeSet<String>),
}

struct Checker<'a, 'p> {
    tree: &'a Tree,
    declared: &'a BTreeMap<&'a Path, Declared>,
    here: &'a Declared,
    dir: &'a Path,
    problems: &'p mut Vec<String>,
    location: String,
}

impl Checker<'_, '_> {
    fn problem(&mut self, message: String) {
        self.problems.push(format!("{}: {message}", self.location));
    }

    fn top_level(&mut self, block: &Block) {
        match block.identifier() {
            // Provider requirements and backend settings hold no references.
            "terraform" => {}
            // `type` is a type constraint, not an expression; defaults may not reference.
            "variable" => {
                for validation in block.body().blocks() {
                    self.body(validation.body(), &mut Vec::new());
                }
            }
            "module" => {
                self.module_call(block);
                self.body(block.body(), &mut Vec::new());
            }
            "moved" => self.moved(block),
            _ => self.body(block.body(), &mut Vec::new()),
        }
    }

    /// `moved { from = …  to = … }` holds addresses, not references: `to` must name a resource
    /// declared here or in a module called from here, and `from` must no longer be declared.
    fn moved(&mut self, block: &Block) {
        let address = |key: &str| {
            attr(block.body(), key).and_then(reference).map(|text| {
                text.split('.')
                    .map(|part| part.trim_end_matches("[]").to_owned())
                    .collect::<Vec<String>>()
            })
        };
        let (Some(from), Some(to)) = (address("from"), address("to")) else {
            self.problem("moved without literal from and to addresses".to_owned());
            return;
        };
        // Giving a resource or a module call `count`: `from = x.y` to `to = x.y[0]`.
        let indexed = |key: &str| {
            attr(block.body(), key)
                .and_then(reference)
                .is_some_and(|text| text.ends_with("[]"))
        };
        let counted = from == to && indexed("to") && !indexed("from");
        if let [kind, name] = from.as_slice()
            && !counted
            && self.here.resources.contains(&(kind.clone(), name.clone()))
        {
            self.problem(format!("moved from {kind}.{name}, which is still declared"));
        }
        let mut declared = self.here;
        let mut rest = to.as_slice();
        while let [root, call, tail @ ..] = rest
            && root == "module"
        {
            let Some(called) = declared
                .modules
                .get(call)
                .and_then(|target| self.declared.get(target.as_path()))
            else {
                self.problem(format!(
                    "moved to {}: module.{call} is not declared",
                    to.join(".")
                ));
                return;
            };
            declared = called;
            rest = tail;
        }
        // An empty rest moves a whole module call (`module.edge` to `module.edge[0]`).
        let found = rest.is_empty()
            || matches!(rest, [kind, name]
            if declared.resources.contains(&(kind.clone(), name.clone())));
        if !found {
            self.problem(format!("moved to {}: no such resource", to.join(".")));
        }
    }

    fn module_call(&mut self, block: &Block) {
        let name = block
            .labels()
            .first()
            .map(BlockLabel::as_str)
            .unwrap_or_default();
        let Some(source) = attr(block.body(), "source").and_then(string) else {
            self.problem(format!("module {name:?} has no literal source"));
            return;
        };
        if !(source.starts_with("./") || source.starts_with("../")) {
            self.problem(format!(
                "module {name:?} has source {source:?}: only local modules can be used here"
            ));
            return;
        }
        let target = normalize(&self.dir.join(source));
        let Some(called) = self.declared.get(target.as_path()) else {
            self.problem(format!(
                "module {name:?}: no module at terraform/{}",
                target.display()
            ));
            return;
        };
        let passed: BTreeSet<&str> = block
            .body()
            .attributes()
            .map(|attribute| attribute.key())
            .filter(|key| !MODULE_META_ARGUMENTS.contains(key))
            .collect();
        for key in &passed {
            if !called.variables.contains_key(*key) {
                self.problem(format!(
                    "module {name:?} passes {key:?}, which terraform/{} does not declare",
                    target.display()
                ));
            }
        }
        for (variable, required) in &called.variables {
            if *required && !passed.contains(variable.as_str()) {
                self.problem(format!(
                    "module {name:?} does not pass the required variable {variable:?}"
                ));
            }
        }
    }

    fn body(&mut self, body: &Body, scope: &mut Vec<String>) {
        for attribute in body.attributes() {
            self.expr(attribute.expr(), scope, &Names::Module);
        }
        for block in body.blocks() {
            match block.identifier() {
                // Attribute names of this very resource, not references.
                "lifecycle" => {
                    for attribute in block.body().attributes() {
                        if attribute.key() != "ignore_changes" {
                            self.expr(attribute.expr(), scope, &Names::Module);
                        }
                    }
                    for nested in block.body().blocks() {
                        self.body(nested.body(), scope);
                    }
                }
                // `dynamic "x"` binds `x` (or its `iterator`) inside `content`.
                "dynamic" => {
                    let iterator = attr(block.body(), "iterator")
                        .and_then(reference)
                        .or_else(|| {
                            block
                                .labels()
                                .first()
                                .map(|label| label.as_str().to_owned())
                        })
                        .unwrap_or_default();
                    if let Some(for_each) = attr(block.body(), "for_each") {
                        self.expr(for_each, scope, &Names::Module);
                    }
                    scope.push(iterator);
                    for nested in block.body().blocks() {
                        self.body(nested.body(), scope);
                    }
                    scope.pop();
                }
                _ => self.body(block.body(), scope),
            }
        }
    }

    fn expr(&mut self, expr: &Expression, scope: &mut Vec<String>, names: &Names<'_>) {
        match expr {
            Expression::Null
            | Expression::Bool(_)
            | Expression::Number(_)
            | Expression::String(_) => {}
            Expression::Array(items) => {
                for item in items {
                    self.expr(item, scope, names);
                }
            }
            Expression::Object(object) => {
                for (key, value) in object {
                    if let ObjectKey::Expression(key) = key {
                        // `(var.x) = …` is a reference; a bare or quoted key is a name.
                        if !matches!(key, Expression::Variable(_) | Expression::String(_)) {
                            self.expr(key, scope, names);
                        }
                    }
                    self.expr(value, scope, names);
                }
            }
            Expression::TemplateExpr(template) => match Template::from_expr(template) {
                Ok(template) => self.template(&template, scope, names),
                Err(error) => {
                    self.problem(format!("template {template:?} does not parse: {error}"))
                }
            },
            Expression::Variable(variable) => self.root(variable.as_str(), &[], scope, names),
            Expression::Traversal(traversal) => {
                match &traversal.expr {
                    Expression::Variable(root) => {
                        self.root(root.as_str(), &traversal.operators, scope, names)
                    }
                    other => self.expr(other, scope, names),
                }
                for operator in &traversal.operators {
                    if let TraversalOperator::Index(index) = operator {
                        self.expr(index, scope, names);
                    }
                }
            }
            Expression::FuncCall(call) => {
                if call.name.name.as_str() == "templatefile" {
                    self.templatefile(&call.args);
                }
                for arg in &call.args {
                    self.expr(arg, scope, names);
                }
            }
            Expression::Parenthesis(inner) => self.expr(inner, scope, names),
            Expression::Conditional(conditional) => {
                self.expr(&conditional.cond_expr, scope, names);
                self.expr(&conditional.true_expr, scope, names);
                self.expr(&conditional.false_expr, scope, names);
            }
            Expression::Operation(operation) => match operation.as_ref() {
                Operation::Unary(unary) => self.expr(&unary.expr, scope, names),
                Operation::Binary(binary) => {
                    self.expr(&binary.lhs_expr, scope, names);
                    self.expr(&binary.rhs_expr, scope, names);
                }
            },
            Expression::ForExpr(for_expr) => {
                self.expr(&for_expr.collection_expr, scope, names);
                let bound = usize::from(for_expr.key_var.is_some()) + 1;
                if let Some(key) = &for_expr.key_var {
                    scope.push(key.as_str().to_owned());
                }
                scope.push(for_expr.value_var.as_str().to_owned());
                if let Some(key_expr) = &for_expr.key_expr {
                    self.expr(key_expr, scope, names);
                }
                self.expr(&for_expr.value_expr, scope, names);
                if let Some(cond) = &for_expr.cond_expr {
                    self.expr(cond, scope, names);
                }
                scope.truncate(scope.len() - bound);
            }
            // `Expression` is non-exhaustive: a kind added later must be taught here.
            other => self.problem(format!("unknown kind of expression: {other:?}")),
        }
    }

    fn template(&mut self, template: &Template, scope: &mut Vec<String>, names: &Names<'_>) {
        for element in template.elements() {
            match element {
                Element::Literal(_) => {}
                Element::Interpolation(interpolation) => {
                    self.expr(&interpolation.expr, scope, names)
                }
                Element::Directive(directive) => match directive.as_ref() {
                    Directive::If(if_directive) => {
                        self.expr(&if_directive.cond_expr, scope, names);
                        self.template(&if_directive.true_template, scope, names);
                        if let Some(false_template) = &if_directive.false_template {
                            self.template(false_template, scope, names);
                        }
                    }
                    Directive::For(for_directive) => {
                        self.expr(&for_directive.collection_expr, scope, names);
                        let bound = usize::from(for_directive.key_var.is_some()) + 1;
                        if let Some(key) = &for_directive.key_var {
                            scope.push(key.as_str().to_owned());
                        }
                        scope.push(for_directive.value_var.as_str().to_owned());
                        self.template(&for_directive.template, scope, names);
                        scope.truncate(scope.len() - bound);
                    }
                },
            }
        }
    }

    /// `templatefile("${path.module}/x.tftpl", { … })`: the template uses only the keys given.
    fn templatefile(&mut self, args: &[Expression]) {
        let [path, Expression::Object(variables)] = args else {
            self.problem("templatefile() without a literal variables object".to_owned());
            return;
        };
        let path_text = match path {
            Expression::TemplateExpr(template) => template.to_string(),
            Expression::String(text) => text.clone(),
            _ => {
                self.problem("templatefile() with a computed path".to_owned());
                return;
            }
        };
        let file = self
            .tree
            .root
            .join(self.dir)
            .join(path_text.replace("${path.module}/", ""));
        let text = match fs::read_to_string(&file) {
            Ok(text) => text,
            Err(error) => {
                self.problem(format!("templatefile(): {}: {error}", file.display()));
                return;
            }
        };
        let template = match text.parse::<Template>() {
            Ok(template) => template,
            Err(error) => {
                self.problem(format!(
                    "{} does not parse as a template: {error}",
                    file.display()
                ));
                return;
            }
        };
        let keys: BTreeSet<String> = variables
            .keys()
            .filter_map(|key| match key {
                ObjectKey::Identifier(name) => Some(name.as_str().to_owned()),
                ObjectKey::Expression(expr) => {
                    reference(expr).or_else(|| string(expr).map(str::to_owned))
                }
                // `ObjectKey` is non-exhaustive; no other kind names a template variable.
                _ => None,
            })
            .collect();
        let shown = file
            .strip_prefix(workspace_root())
            .unwrap_or(&file)
            .display()
            .to_string();
        let location = std::mem::replace(&mut self.location, shown);
        self.template(&template, &mut Vec::new(), &Names::Template(&keys));
        self.location = location;
    }

    fn root(
        &mut self,
        root: &str,
        operators: &[TraversalOperator],
        scope: &[String],
        names: &Names<'_>,
    ) {
        if scope.iter().any(|bound| bound == root) {
            return;
        }
        if let Names::Template(keys) = names {
            if !keys.contains(root) {
                self.problem(format!(
                    "the template uses {root:?}, which is not passed to it"
                ));
            }
            return;
        }
        let attrs: Vec<&str> = operators
            .iter()
            .map_while(|operator| match operator {
                TraversalOperator::GetAttr(name) => Some(name.as_str()),
                _ => None,
            })
            .collect();
        let first = attrs.first().copied().unwrap_or_default();
        let here = self.here;
        match root {
            "var" if !here.variables.contains_key(first) => {
                self.problem(format!("var.{first} is not declared"));
            }
            "local" if !here.locals.contains(first) => {
                self.problem(format!("local.{first} is not declared"));
            }
            "module" => match here.modules.get(first) {
                None => self.problem(format!("module.{first} is not declared")),
                Some(target) => {
                    // The output follows the call's name, after any index or splat of a call
                    // with count: module.edge[0].asg_name, module.edge[*].asg_name.
                    let output = operators
                        .iter()
                        .skip(1)
                        .find_map(|operator| match operator {
                            TraversalOperator::GetAttr(name) => Some(name.as_str()),
                            _ => None,
                        })
                        .unwrap_or_default();
                    let has_output = self
                        .declared
                        .get(target.as_path())
                        .is_some_and(|called| called.outputs.contains(output));
                    if !has_output {
                        self.problem(format!(
                            "module.{first}.{output}: terraform/{} has no such output",
                            target.display()
                        ));
                    }
                }
            },
            "data" => {
                let name = attrs.get(1).copied().unwrap_or_default();
                if !here.data.contains(&(first.to_owned(), name.to_owned())) {
                    self.problem(format!("data.{first}.{name} is not declared"));
                }
            }
            "var" | "local" => {}
            _ if BUILTIN_ROOTS.contains(&root) => {}
            _ if here
                .resources
                .contains(&(root.to_owned(), first.to_owned())) => {}
            _ => self.problem(format!("{root}.{first} is neither declared nor in scope")),
        }
    }
}
