// ReDoc under our Content-Security-Policy, loaded (with the page's nonce) just before ReDoc's bundle.
// 1. Styles: modules in ReDoc's bundle add <style> elements while it loads, before ReDoc.init() can hand
//    them the nonce; every <style> created on this page gets it here (script on this page is already
//    trusted: it is our own static files and nonce'd blocks).
// 2. No CDN: ReDoc's sidebar always loads a logo from cdn.redoc.ly; an <img> pointing off our origin
//    is not given its src, so no request leaves (and none is refused by the policy).
(function () {
  "use strict";
  var nonce = document.currentScript && document.currentScript.nonce;
  var createElement = Document.prototype.createElement;
  Document.prototype.createElement = function (name) {
    var element = createElement.apply(this, arguments);
    if (nonce && String(name).toLowerCase() === "style") element.nonce = nonce;
    return element;
  };
  function offOrigin(value) {
    var url = new URL(String(value), document.baseURI);
    return url.protocol !== "data:" && url.origin !== window.location.origin;
  }
  var setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    if (this instanceof HTMLImageElement && String(name).toLowerCase() === "src" && offOrigin(value)) return;
    return setAttribute.apply(this, arguments);
  };
  var src = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, "src");
  Object.defineProperty(HTMLImageElement.prototype, "src", {
    configurable: true,
    enumerable: src.enumerable,
    get: src.get,
    set: function (value) {
      if (!offOrigin(value)) src.set.call(this, value);
    },
  });
})();
