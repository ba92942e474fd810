// An ES module whose default export is the handler.
export const unit = "cm";

export default function (args) {
  return { area: args.w * args.h, unit };
}
