// hellojs: the FunLess paper's JavaScript hello, in FunLess's template.
// Deploy it with `edgefaas fn create hellojs examples/hellojs/hello.js`.
module.exports.fl_main = function (input) {
  const name = typeof input.name === "string" && input.name !== "" ? input.name : "World";
  console.log("greeting " + name);
  return { message: `Hello, ${name}!` };
};
