import{a,b}from"./chunk-ZKHUJUWF.js";import"./chunk-2GXA6D7G.js";import"./chunk-LYDA7OUC.js";import"./chunk-K7PCE3P5.js";import"./chunk-6DHFEWGX.js";export{a as Feed,b as MyVideos};
