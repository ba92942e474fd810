// FunLess's JavaScript template: a CommonJS script that sets fl_main.
const greet = name => `Hello, ${name}!`;

module.exports.fl_main = function (input) {
  return { message: greet(input.name || "World") };
};
